package store_test

import (
	"fmt"
	"log"
	"os"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/store"
)

// A feature keeps one record per device and a bounded log; both survive a reopen.
func Example() {
	dir, err := os.MkdirTemp("", "store-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := store.OpenDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	_ = db.Put("thing.reported", "P1/lamp", []byte(`{"power":1}`))
	for _, e := range []string{"boot", "alarm", "reset"} {
		_, _ = db.Append("thing.events", "P1/lamp", []byte(e), 2) // keep the newest two
	}
	_ = db.Close()

	db, err = store.OpenDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	_ = db.Load("thing.reported", func(key string, value []byte) error {
		fmt.Printf("%s %s\n", key, value)
		return nil
	})
	events, _ := db.Log("thing.events", "P1/lamp")
	fmt.Printf("%s\n", events)
	// Output:
	// P1/lamp {"power":1}
	// [alarm reset]
}
