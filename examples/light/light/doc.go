// Package light is the code tplgen generates from schemas/light.json (a smart light: switch,
// color, brightness and name properties, status_report/low_voltage/hardware_fault events and a
// light_on action). The go:generate line in examples/light/main.go regenerates it; only this
// file is written by hand.
package light
