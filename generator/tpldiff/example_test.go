package tpldiff_test

import (
	"fmt"

	"github.com/tplgen/tplgen/generator/tpldiff"
	"github.com/tplgen/tplgen/runtime/template"
)

func ExampleDiff() {
	v1 := `{"version": "1.0", "properties": [
  {"id": "brightness", "name": "Brightness", "mode": "rw", "define": {"type": "int", "min": "0", "max": "100"}},
  {"id": "color", "name": "Color", "mode": "rw", "define": {"type": "enum", "mapping": {"0": "red", "1": "blue"}}}
]}`
	v2 := `{"version": "1.0", "properties": [
  {"id": "brightness", "name": "Brightness", "mode": "rw", "define": {"type": "int", "min": "0", "max": "255"}},
  {"id": "color", "name": "Colour", "mode": "r", "define": {"type": "enum", "mapping": {"0": "red"}}}
]}`
	oldT, err := template.Parse("v1.json", []byte(v1))
	if err != nil {
		panic(err)
	}
	newT, err := template.Parse("v2.json", []byte(v2))
	if err != nil {
		panic(err)
	}
	changes := tpldiff.Diff(oldT, newT)
	for _, c := range changes {
		fmt.Println(c)
	}
	fmt.Println("breaking:", tpldiff.HasBreaking(changes))
	// Output:
	// v2.json:2:70: compatible: property "brightness": max raised from 100 to 255
	// v2.json:3:3: compatible: property "color": name changed from "Color" to "Colour"
	// v2.json:3:3: breaking: property "color": mode narrowed from rw to r (apps can no longer control it)
	// v2.json:3:60: breaking: property "color": value 1 ("blue") removed
	// breaking: true
}
