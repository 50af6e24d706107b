package tplwire_test

import (
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/tplwire"
)

func ExampleBool() {
	type params struct {
		PowerSwitch *tplwire.Bool `json:"power_switch,omitempty"`
	}
	out, _ := json.Marshal(params{PowerSwitch: tplwire.Ptr(tplwire.Bool(true))})
	fmt.Println(string(out))

	var in params
	_ = json.Unmarshal([]byte(`{"power_switch":0}`), &in)
	fmt.Println(*in.PowerSwitch)
	// Output:
	// {"power_switch":1}
	// false
}

func ExampleTimestamp() {
	var ts tplwire.Timestamp
	_ = json.Unmarshal([]byte(`1577871650123`), &ts) // milliseconds are normalised to seconds
	out, _ := json.Marshal(ts)
	fmt.Println(string(out), ts)
	// Output: 1577871650 2020-01-01T09:40:50Z
}

func ExampleErrors() {
	var e tplwire.Errors
	e.Add(tplwire.CheckInt("brightness", 150, 0, 100))
	e.Add(tplwire.CheckString(tplwire.Join("struct", "name"), "ok", 0, 64))
	fmt.Println(e.Err())
	// Output: brightness: 150 out of range [0,100]
}
