package explorer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkPublishTopic enforces the platform's topic limits for a publish: non-empty, valid
// UTF-8, ≤ 255 bytes, ≤ 10 levels, no wildcards.
func checkPublishTopic(topic string) error {
	if err := checkTopicCommon(topic, "publish"); err != nil {
		return err
	}
	if i := strings.IndexAny(topic, "+#"); i >= 0 {
		return newErrorf(ErrInvalidTopic, nil, "publish "+quote(topic), "wildcard %q is not allowed in a publish topic", topic[i])
	}
	return nil
}

// checkFilter enforces the limits for a subscription filter; wildcards must be whole levels
// and '#' must be last.
func checkFilter(filter, op string) error {
	if err := checkTopicCommon(filter, op); err != nil {
		return err
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "#" && i != len(levels)-1 {
			return newErrorf(ErrInvalidTopic, nil, op+" "+quote(filter), "'#' must be the last level")
		}
		if l != "#" && l != "+" && strings.ContainsAny(l, "+#") {
			return newErrorf(ErrInvalidTopic, nil, op+" "+quote(filter), "wildcard inside level %q (a wildcard must be a whole level)", l)
		}
	}
	return nil
}

func checkTopicCommon(topic, op string) error {
	what := op + " " + quote(topic)
	switch {
	case topic == "":
		return newErrorf(ErrInvalidTopic, nil, op, "empty topic")
	case len(topic) > MaxTopicLength:
		return newErrorf(ErrInvalidTopic, nil, what, "%d bytes, the platform allows at most %d", len(topic), MaxTopicLength)
	case !utf8.ValidString(topic):
		return newErrorf(ErrInvalidTopic, nil, what, "not valid UTF-8")
	case strings.IndexByte(topic, 0) >= 0:
		return newErrorf(ErrInvalidTopic, nil, what, "contains a NUL byte")
	}
	if n := strings.Count(topic, "/") + 1; n > MaxTopicLevels {
		return newErrorf(ErrInvalidTopic, nil, what, "%d levels, the platform allows at most %d", n, MaxTopicLevels)
	}
	return nil
}

func checkQoS(qos byte, what string) error {
	if qos > 1 {
		return newErrorf(ErrInvalidQoS, nil, what, "got QoS %d", qos)
	}
	return nil
}

// quote keeps long topics readable in errors.
func quote(topic string) string {
	if len(topic) > 80 {
		return strings.ToValidUTF8(`"`+topic[:77]+`..."`, "?")
	}
	return `"` + strings.ToValidUTF8(topic, "?") + `"`
}

// topicMatches reports whether topic matches the MQTT filter. Wildcards at the first level
// do not match topics starting with '$' (MQTT 3.1.1 §4.7.2).
func topicMatches(filter, topic string) bool {
	if filter == topic {
		return true
	}
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		tl, trest, tmore := strings.Cut(topic, "/")
		switch {
		case fl == "#":
			return true
		case fl != "+" && fl != tl:
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a" (the parent level).
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// itoa formats n for error texts without fmt.
func itoa(n int) string { return strconv.Itoa(n) }
