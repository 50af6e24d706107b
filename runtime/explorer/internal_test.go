package explorer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTopicMatches(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$sys/x", false},
		{"+/x", "$sys/x", false},
		{"$sys/+", "$sys/x", true},
		{"$thing/down/property/P/D", "$thing/down/property/P/D", true},
		{"a/+", "a/", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		{"+", "a", true},
		{"+", "a/b", false},
	}
	for _, tt := range tests {
		if got := topicMatches(tt.filter, tt.topic); got != tt.want {
			t.Errorf("topicMatches(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestTopicChecks(t *testing.T) {
	long := strings.Repeat("a", 256)
	deep := "a/b/c/d/e/f/g/h/i/j/k"
	for _, tt := range []struct {
		topic, want string
	}{
		{"", "empty topic"},
		{long, "256 bytes, the platform allows at most 255"},
		{deep, "11 levels, the platform allows at most 10"},
		{"a/+/b", `wildcard '+' is not allowed`},
		{"a/#", `wildcard '#' is not allowed`},
		{"a\x00b", "NUL"},
		{"a\xffb", "UTF-8"},
	} {
		err := checkPublishTopic(tt.topic)
		if !errors.Is(err, ErrInvalidTopic) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("checkPublishTopic(%q) = %v, want ErrInvalidTopic with %q", tt.topic, err, tt.want)
		}
	}
	if err := checkPublishTopic("a/b/c/d/e/f/g/h/i/j"); err != nil {
		t.Errorf("10 levels: %v", err)
	}
	for _, f := range []string{"a/#/b", "a/b#", "a+/b"} {
		if err := checkFilter(f, "subscribe"); !errors.Is(err, ErrInvalidTopic) || !strings.Contains(err.Error(), f) {
			t.Errorf("checkFilter(%q) = %v", f, err)
		}
	}
	for _, f := range []string{"a/#", "+/b", "#", "$sys/operation/result/P/D"} {
		if err := checkFilter(f, "subscribe"); err != nil {
			t.Errorf("checkFilter(%q) = %v", f, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: time.Second, max: 8 * time.Second, rand: func(n int64) int64 { return n - 1 }}
	var got []time.Duration
	for range 6 {
		got = append(got, b.next().Round(time.Second))
	}
	want := []time.Duration{1, 3, 6, 12, 12, 12} // base 1,2,4,8,8,8 s plus just under 50 % jitter, rounded
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v s", got, want)
		}
	}
	b = backoff{min: time.Second, max: time.Minute, rand: func(int64) int64 { return 0 }}
	if d := b.next(); d != time.Second {
		t.Fatalf("no-jitter first delay %v", d)
	}
}

func TestServerTimeFormula(t *testing.T) {
	n1, n2 := int64(1660189367410), int64(1660189367420)
	sent := time.UnixMilli(1000)
	recv := time.UnixMilli(1100)
	got := serverTime(timeReply{NTPTime1: &n1, NTPTime2: &n2}, sent, recv)
	if want := time.UnixMilli((n1 + n2 + 100) / 2); !got.Equal(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	sec := int64(1660189367)
	if got := serverTime(timeReply{Time: &sec}, sent, recv); !got.Equal(time.Unix(sec, 0)) {
		t.Fatalf("seconds fallback: %v", got)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateConnecting: "connecting", StateConnected: "connected", StateReconnecting: "reconnecting", StateClosed: "closed", 9: "State(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}

func TestRegionHosts(t *testing.T) {
	for region, host := range map[string]string{
		"":           "P1.iotcloud.tencentdevices.com:8883",
		"china":      "P1.iotcloud.tencentdevices.com:8883",
		"us-east":    "P1.us-east.iotcloud.tencentdevices.com:8883",
		"europe":     "P1.europe.iothub.tencentdevices.com:8883",
		"ap-bangkok": "P1.ap-bangkok.iothub.tencentdevices.com:8883",
	} {
		b, err := Config{ProductID: "P1", DeviceName: "d", DeviceSecret: "AAAA", Region: region}.validate()
		if err != nil || !b.tls || b.hostPort() != host {
			t.Errorf("region %q: %v %+v", region, err, b)
		}
	}
	for broker, want := range map[string]string{
		"ssl://h:1":  "tls://h:1",
		"tls://h":    "tls://h:8883",
		"mqtt://h":   "tcp://h:1883",
		"tcp://h:99": "tcp://h:99",
	} {
		b, err := Config{ProductID: "P1", DeviceName: "d", DeviceSecret: "AAAA", Broker: broker, Region: "ignored-when-broker-set"}.validate()
		if err != nil || b.String() != want {
			t.Errorf("broker %q: %v %v", broker, err, b)
		}
	}
}

func TestConnIDAlphabet(t *testing.T) {
	for range 100 {
		id := newConnID()
		if len(id) != 5 || strings.Trim(id, connIDAlphabet) != "" {
			t.Fatalf("conn id %q", id)
		}
	}
}

// FuzzTopics: the checks never panic, a valid publish topic is a valid filter matching
// itself, and "#" matches every valid topic that does not start with '$'.
func FuzzTopics(f *testing.F) {
	for _, s := range []string{"a/b", "$thing/up/property/P/D", "a//b", "/", "+/#", "a/#/b", "\xff"} {
		f.Add(s, "a/+")
	}
	f.Fuzz(func(t *testing.T, topic, filter string) {
		_ = checkFilter(filter, "subscribe")
		if checkFilter(filter, "subscribe") == nil && checkPublishTopic(topic) == nil {
			_ = topicMatches(filter, topic)
		}
		if checkPublishTopic(topic) != nil {
			return
		}
		if err := checkFilter(topic, "subscribe"); err != nil {
			t.Fatalf("publish topic %q is not a valid filter: %v", topic, err)
		}
		if !topicMatches(topic, topic) {
			t.Fatalf("%q does not match itself", topic)
		}
		if !strings.HasPrefix(topic, "$") && !topicMatches("#", topic) {
			t.Fatalf("# does not match %q", topic)
		}
	})
}
