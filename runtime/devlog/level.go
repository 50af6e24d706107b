package devlog

import (
	"fmt"
	"log/slog"
)

// Level is the cloud's log level (docs/PROTOCOL.md §7.2).
type Level int

// Cloud log levels.
const (
	LevelNone  Level = 0 // upload nothing
	LevelError Level = 1
	LevelWarn  Level = 2
	LevelInfo  Level = 3
	LevelDebug Level = 4
)

// String returns the level's name.
func (l Level) String() string {
	switch l {
	case LevelNone:
		return "none"
	case LevelError:
		return "error"
	case LevelWarn:
		return "warn"
	case LevelInfo:
		return "info"
	case LevelDebug:
		return "debug"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// Valid reports whether l is one of the five cloud levels.
func (l Level) Valid() bool { return l >= LevelNone && l <= LevelDebug }

// Allows reports whether a record at slog level sl is kept at cloud level l.
func (l Level) Allows(sl slog.Level) bool {
	switch {
	case l <= LevelNone:
		return false
	case sl >= slog.LevelError:
		return true
	case sl >= slog.LevelWarn:
		return l >= LevelWarn
	case sl >= slog.LevelInfo:
		return l >= LevelInfo
	}
	return l >= LevelDebug
}

// prefix is the three-letter level of a line.
func prefix(sl slog.Level) string {
	switch {
	case sl >= slog.LevelError:
		return "ERR"
	case sl >= slog.LevelWarn:
		return "WRN"
	case sl >= slog.LevelInfo:
		return "INF"
	}
	return "DBG"
}
