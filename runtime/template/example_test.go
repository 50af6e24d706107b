package template_test

import (
	"errors"
	"fmt"

	"github.com/tplgen/tplgen/runtime/template"
)

const lampJSON = `{
  "version": "1.0",
  "profile": {"ProductId": "ZPHBLEB4J5", "CategoryId": "3"},
  "properties": [
    {"id": "power_switch", "name": "电灯开关", "mode": "rw",
     "define": {"type": "bool", "mapping": {"0": "关", "1": "开"}}},
    {"id": "brightness", "name": "亮度", "mode": "rw",
     "define": {"type": "int", "min": "0", "max": "100", "start": "1", "step": "1", "unit": "%"}},
    {"id": "color", "name": "颜色", "mode": "rw",
     "define": {"type": "enum", "mapping": {"0": "Red", "1": "Green", "2": "Blue"}}},
    {"id": "voltage", "name": "电压", "mode": "r",
     "define": {"type": "float", "min": "0", "max": "24", "start": "30", "step": "0.5"}}
  ],
  "events": [],
  "actions": []
}`

func ExampleParse() {
	tpl, err := template.Parse("lamp.json", []byte(lampJSON))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tpl.ProductID, len(tpl.Properties), "properties")
	b := tpl.Property("brightness").Define
	fmt.Println(b.Type, b.Min, b.Max, b.Unit)
	for _, w := range tpl.Warnings {
		fmt.Println("warning:", w)
	}

	// Errors are located FILE:LINE:COL and name the element.
	_, err = template.Parse("bad.json", []byte(`{"events":[
  {"id":"alarm","type":"fatal","params":[]},
]}`))
	fmt.Println(err)
	// Output:
	// ZPHBLEB4J5 4 properties
	// int 0 100 %
	// warning: lamp.json:12:68: properties[3] "voltage": define.start 30 is outside [0,24]
	// bad.json:2:44: trailing comma before ]
}

func ExampleTemplate_CheckProperties() {
	tpl, err := template.Parse("lamp.json", []byte(lampJSON))
	if err != nil {
		panic(err)
	}
	// A report: every key must be a property, every value valid.
	fmt.Println(tpl.CheckProperties([]byte(`{"power_switch":1,"brightness":42}`), false))
	fmt.Println(tpl.CheckProperties([]byte(`{"brightness":101}`), false))
	err = tpl.CheckProperties([]byte(`{"color":7}`), false)
	fmt.Println(err, errors.Is(err, template.ErrInvalidValue))
	// A control may only set writable properties; unknown ids map to the platform's 403.
	fmt.Println(tpl.CheckProperties([]byte(`{"voltage":3}`), true))
	err = tpl.CheckProperties([]byte(`{"brightnes":1}`), false)
	fmt.Println(err, errors.Is(err, template.ErrUnknownID))
	// Output:
	// <nil>
	// params.brightness: 101 out of range [0,100]
	// params.color: 7 is not one of 0,1,2 true
	// params.voltage: property "voltage" is read-only and cannot be controlled
	// params.brightnes: unknown property "brightnes" true
}

func ExampleDefine_CheckValue() {
	tpl, err := template.Parse("lamp.json", []byte(lampJSON))
	if err != nil {
		panic(err)
	}
	d := tpl.Property("power_switch").Define
	fmt.Println(d.CheckValue(1))
	fmt.Println(d.CheckValue(true))
	// Output:
	// <nil>
	// true: bool values are sent as 0 or 1, not true/false
}
