package explorer

import "time"

// WithClock exposes the clock option to the external tests.
func WithClock(now func() time.Time) Option { return withClock(now) }
