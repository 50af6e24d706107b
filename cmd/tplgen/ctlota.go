package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	json "github.com/goccy/go-json"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func otaCommand() *cli.Command {
	return &cli.Command{
		Name:  "ota",
		Usage: "firmware updates",
		Flags: ctlFlags(),
		Subcommands: []*cli.Command{{
			Name:      "push",
			Usage:     "upload a firmware image and push it to devices",
			ArgsUsage: "PID/DN...",
			Description: `Uploads --file as version --version of each device's product, then starts an OTA job on every
device. With --watch, shows a progress bar per device until every job is done or failed (exit 1
if any failed). Devices that download over plain HTTP (ota.WithInsecureHTTP) need --plain-http.`,
			Flags: append(ctlFlags(),
				&cli.StringFlag{Name: "file", Usage: "firmware image `FILE`", Required: true},
				&cli.StringFlag{Name: "version", Usage: "firmware `VERSION`", Required: true},
				&cli.BoolFlag{Name: "plain-http", Usage: "push an http:// download URL instead of https://"},
				&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "show progress until every job ends"},
				&cli.DurationFlag{Name: "interval", Value: 250 * time.Millisecond, Usage: "how often --watch polls an emulator without /api/stream"},
				&cli.DurationFlag{Name: "watch-timeout", Value: 30 * time.Minute, Usage: "give up watching after `DURATION`"},
				&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress display `MODE`: bars, lines, or auto (bars on a terminal)"},
			),
			Action: ctlOTAPush,
		}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("ctl ota: unknown command %q (want push)", c.Args().First())
			}
			_ = cli.ShowSubcommandHelp(c)
			return usagef("ctl ota: no command given")
		},
	}
}

// otaJob is the part of the API's OTA job document that ctl shows.
type otaJob struct {
	ProductID     string `json:"product_id"`
	DeviceName    string `json:"device_name"`
	TargetVersion string `json:"target_version"`
	State         string `json:"state"`
	Percent       int    `json:"percent"`
	ResultCode    int    `json:"result_code"`
	ResultMsg     string `json:"result_msg"`
}

func (j otaJob) ended() bool { return j.State == "done" || j.State == "fail" }

func (j otaJob) describe() string {
	switch j.State {
	case "fail":
		msg := fmt.Sprintf("fail (code %d)", j.ResultCode)
		if j.ResultMsg != "" {
			msg += ": " + j.ResultMsg
		}
		return msg
	case "downloading":
		return fmt.Sprintf("downloading %d%%", j.Percent)
	}
	return j.State
}

func ctlOTAPush(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("ctl ota push: want at least one PID/DN")
	}
	mode := c.String("progress")
	if mode != "auto" && mode != "bars" && mode != "lines" {
		return usagef("ctl ota push: --progress %q: want bars, lines or auto", mode)
	}
	type device struct{ pid, dn string }
	var devices []device
	var products []string
	seen := map[string]bool{}
	for _, a := range c.Args().Slice() {
		pid, dn, err := parseDeviceArg(a)
		if err != nil {
			return err
		}
		devices = append(devices, device{pid, dn})
		if !seen[pid] {
			seen[pid] = true
			products = append(products, pid)
		}
	}
	env, err := newCtlEnv(c)
	if err != nil {
		return err
	}
	version, file := c.String("version"), c.String("file")
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	for _, pid := range products {
		size, err := uploadFirmware(ctx, env, pid, version, file)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.out, "uploaded %s as %s %s (%d bytes)\n", file, pid, version, size)
	}
	for _, d := range devices {
		cctx, cancel := env.callCtx(ctx)
		body := map[string]any{"version": version, "plain_http": c.Bool("plain-http")}
		_, err := env.api.postJSON(cctx, nil, body, nil, "api", "devices", d.pid, d.dn, "ota")
		cancel()
		if err != nil {
			return fmt.Errorf("%s/%s: %w", d.pid, d.dn, err)
		}
		fmt.Fprintf(env.out, "pushed %s to %s/%s\n", version, d.pid, d.dn)
	}
	if !c.Bool("watch") {
		return nil
	}
	if c.Duration("interval") <= 0 {
		return usagef("ctl ota push: --interval must be positive")
	}
	if mode == "auto" {
		mode = "lines"
		if f, ok := env.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bars"
		}
	}
	wctx, cancel := context.WithTimeout(ctx, c.Duration("watch-timeout"))
	defer cancel()
	names := make([]string, len(devices))
	for i, d := range devices {
		names[i] = d.pid + "/" + d.dn
	}
	w := &otaWatch{env: env, names: names, jobs: make([]otaJob, len(devices)),
		view: newProgressView(env.out, names, mode == "bars")}
	err = env.api.follow(wctx, url.Values{"device": names, "type": {"ota"}},
		func() error { return w.fetchAll(wctx) },
		func(ev sseEvent) error {
			var d streamData
			var j otaJob
			if json.Unmarshal(ev.Data, &d) != nil || json.Unmarshal(d.Data, &j) != nil {
				return fmt.Errorf("stream: unexpected ota event %.200s", ev.Data)
			}
			return w.apply(slices.Index(names, d.Device), j)
		})
	if errors.Is(err, errNoStream) {
		err = w.poll(wctx, c.Duration("interval"))
	}
	switch {
	case errors.Is(err, errWatchDone):
	case err != nil:
		w.view.finish()
		return err
	case ctx.Err() != nil:
		w.view.finish()
		return cli.Exit("interrupted; the jobs go on in the emulator", exitFail)
	default:
		w.view.finish()
		return fmt.Errorf("ota push --watch: jobs not finished after %s", c.Duration("watch-timeout"))
	}
	jobs, view := w.jobs, w.view
	view.finish()
	var failed []string
	for i, j := range jobs {
		if j.State == "fail" {
			failed = append(failed, names[i]+": "+j.describe())
		}
	}
	if len(failed) > 0 {
		return cli.Exit("OTA failed on "+strings.Join(failed, "; "), exitFail)
	}
	fmt.Fprintf(env.out, "%d device(s) updated to %s\n", len(devices), version)
	return nil
}

// errWatchDone ends a watch: every job is done or failed.
var errWatchDone = errors.New("every OTA job ended")

// otaWatch follows the OTA jobs of the pushed devices.
type otaWatch struct {
	env   *ctlEnv
	names []string // PID/DN
	jobs  []otaJob
	view  *progressView
}

// apply records job i's new state; errWatchDone when every job has ended.
func (w *otaWatch) apply(i int, j otaJob) error {
	if i < 0 || w.jobs[i].ended() {
		return nil
	}
	w.jobs[i] = j
	w.view.update(i, j)
	for _, j := range w.jobs {
		if !j.ended() {
			return nil
		}
	}
	return errWatchDone
}

// fetchAll reads every unfinished job from the API.
func (w *otaWatch) fetchAll(ctx context.Context) error {
	for i, name := range w.names {
		if w.jobs[i].ended() {
			continue
		}
		pid, dn, _ := strings.Cut(name, "/")
		cctx, cancel := w.env.callCtx(ctx)
		var j otaJob
		err := w.env.api.getJSON(cctx, &j, "api", "devices", pid, dn, "ota")
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := w.apply(i, j); err != nil {
			return err
		}
	}
	return nil
}

// poll is the watch for an emulator without /api/stream: fetchAll every interval.
func (w *otaWatch) poll(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := w.fetchAll(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// uploadFirmware streams the file as the raw body of POST /api/firmware.
func uploadFirmware(ctx context.Context, env *ctlEnv, pid, version, file string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("--file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("--file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("--file %s: not a regular file", file)
	}
	// An upload may take long for a big image: no --timeout here, only the caller's context.
	req, err := env.api.newRequest(ctx, http.MethodPost, env.api.url(url.Values{"product": {pid}, "version": {version}}, "api", "firmware"), f)
	if err != nil {
		return 0, err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	if _, _, err := env.api.do(req); err != nil {
		return 0, fmt.Errorf("upload %s for %s: %w", file, pid, err)
	}
	return st.Size(), nil
}

// progressView shows one progress bar per device: redrawn in place on a terminal, or one line
// per change of state otherwise (logs, scripts, tests).
type progressView struct {
	w     io.Writer
	names []string
	bars  []*progressbar.ProgressBar
	last  []string
	width int // of the longest name, so that states line up
	ansi  bool
	drawn bool
}

func newProgressView(w io.Writer, names []string, ansi bool) *progressView {
	v := &progressView{w: w, names: names, last: make([]string, len(names)), ansi: ansi}
	for _, n := range names {
		v.width = max(v.width, len(n))
	}
	for _, n := range names {
		// Each bar renders into its own state; the view composes the lines.
		v.bars = append(v.bars, progressbar.NewOptions(100,
			progressbar.OptionSetWriter(io.Discard),
			progressbar.OptionSetDescription(fmt.Sprintf("%-*s", v.width, n)),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(false),
		))
	}
	return v
}

func (v *progressView) update(i int, j otaJob) {
	percent := j.Percent
	switch j.State {
	case "done", "burning":
		percent = 100
	}
	bar := v.bars[i]
	bar.Describe(fmt.Sprintf("%-*s  %s", v.width, v.names[i], j.describe()))
	if percent < int(bar.State().CurrentNum) {
		bar.Reset()
	}
	_ = bar.Set(percent)
	if !v.ansi {
		if line := strings.TrimSpace(bar.String()); line != v.last[i] {
			v.last[i] = line
			fmt.Fprintln(v.w, line)
		}
		return
	}
	v.redraw()
}

// redraw moves the cursor back over the previous frame and writes every bar again.
func (v *progressView) redraw() {
	var b strings.Builder
	if v.drawn {
		fmt.Fprintf(&b, "\x1b[%dA", len(v.bars))
	}
	for _, bar := range v.bars {
		b.WriteString("\r\x1b[K")
		b.WriteString(strings.TrimSpace(bar.String()))
		b.WriteByte('\n')
	}
	v.drawn = true
	_, _ = io.WriteString(v.w, b.String())
}

func (v *progressView) finish() {
	if v.ansi && v.drawn {
		v.redraw()
	}
}
