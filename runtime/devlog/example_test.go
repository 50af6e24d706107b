package devlog_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tplgen/tplgen/runtime/devlog"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// A device sends its logs to the cloud at the level the cloud asks for.
func ExampleUploader_Handler() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	platform, _ := explorertest.NewServer()
	defer platform.Close()
	platform.AddDevice("EXAMPLEPID", "dev1")
	platform.SetLogLevel("EXAMPLEPID", "dev1", 3) // info; PUT /api/devices/{pid}/{dn}/log-level

	cfg := platform.DeviceConfig("EXAMPLEPID", "dev1")
	conn, err := explorer.Dial(ctx, cfg, platform.DialOptions()...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	up, err := devlog.New(ctx, conn, cfg,
		devlog.WithEndpoint(platform.HTTPSURL()), // default: the platform's gateway
		devlog.WithRootCAs(platform.RootCAs()))
	if err != nil {
		fmt.Println(err)
		return
	}
	level, _ := up.RequestLevel(ctx)
	fmt.Println("cloud level:", level)

	log := slog.New(up.Handler())
	log.Debug("below the cloud's level: not kept")
	log.Info("sensor ready", "port", 2)
	up.Close(ctx) // uploads what is buffered

	logs, _ := platform.DeviceLogs("EXAMPLEPID", "dev1") // GET /api/devices/{pid}/{dn}/logs
	for _, l := range logs.Lines {
		fmt.Println(l.Level, l.Text[strings.LastIndex(l.Text, "|")+1:])
	}
	// Output:
	// cloud level: info
	// INF sensor ready port=2
}
