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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	json "github.com/goccy/go-json"
	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/runtime/template"
)

// ctlFlags are accepted by ctl and by each of its subcommands, so they may be written
// anywhere on the line.
func ctlFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api", Value: "http://127.0.0.1:8080", EnvVars: []string{"TPLGEN_API"},
			Usage: "the emulator's HTTP `URL` (its --http address)"},
		&cli.StringFlag{Name: "token", EnvVars: []string{"TPLGEN_API_TOKEN"},
			Usage: "API `TOKEN`, sent as Authorization: Bearer (prefer the environment variable)"},
		&cli.StringSliceFlag{Name: "template", EnvVars: []string{"TPLGEN_TEMPLATES"},
			Usage: "data template `[PID=]FILE` of a product, to parse KEY=VALUE by its types (repeatable)"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second,
			Usage: "how long a request (and a device's reply) may take"},
	}
}

// ctlCommand is a client of the emulator's JSON API for terminals and scripts.
func ctlCommand() *cli.Command {
	sub := []*cli.Command{
		{
			Name: "devices", Usage: "list devices: product, name, online", ArgsUsage: " ",
			Flags:  append(ctlFlags(), &cli.BoolFlag{Name: "json", Usage: "print the API's JSON"}),
			Action: ctlDevices,
		},
		{
			Name: "get", Usage: "print a device's document (reported state, events, OTA, ...)", ArgsUsage: "PID/DN",
			Flags: ctlFlags(), Action: ctlGet,
		},
		{
			Name: "control", Usage: "send control to a device and print its reply", ArgsUsage: "PID/DN KEY=VALUE...",
			Flags: ctlFlags(), Action: ctlControl,
		},
		{
			Name: "action", Usage: "invoke an action and print the device's reply", ArgsUsage: "PID/DN ACTION-ID [KEY=VALUE...]",
			Flags: ctlFlags(), Action: ctlAction,
		},
		{
			Name: "events", Usage: "print a device's events, one per line", ArgsUsage: "PID/DN",
			Flags: append(ctlFlags(),
				&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new events until interrupted"},
				&cli.DurationFlag{Name: "interval", Value: 500 * time.Millisecond, Usage: "how often --follow polls an emulator without /api/stream"},
				&cli.BoolFlag{Name: "json", Usage: "print each event as the API's JSON"},
			),
			Action: ctlEvents,
		},
		otaCommand(),
	}
	return &cli.Command{
		Name:  "ctl",
		Usage: "drive a running tplgen emulate from the terminal or a script (its JSON API)",
		Description: `Talks to the JSON API of tplgen emulate on --api (default http://127.0.0.1:8080, or $TPLGEN_API).
Errors answered by the API are printed as the API says them, with the HTTP status, and exit 1.

KEY=VALUE arguments are parsed by the product's data template (--template, else the one the
emulator serves on GET /api/products/{pid}): bool: 1/0/true/false/on/off or a label; enum and
stringenum: a key or a label; timestamp: seconds, now or RFC 3339; struct and array: JSON; and
checked before sending. Without a template a VALUE that is JSON is sent as such, anything else
as a string, and the emulator checks it.

Examples:
   tplgen ctl devices
   tplgen ctl control --template light.json ZPHBLEB4J5/lamp1 power_switch=on color=Blue
   tplgen ctl action ZPHBLEB4J5/lamp1 light_on is_on=1
   tplgen ctl ota push --file fw.bin --version 1.0.1 --watch ZPHBLEB4J5/lamp1 ZPHBLEB4J5/lamp2
   tplgen ctl events --follow ZPHBLEB4J5/lamp1`,
		Flags:       ctlFlags(),
		Subcommands: sub,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("ctl: unknown command %q (want devices, get, control, action, events or ota)", c.Args().First())
			}
			_ = cli.ShowSubcommandHelp(c)
			return usagef("ctl: no command given")
		},
	}
}

// ctlEnv is what every ctl subcommand needs.
type ctlEnv struct {
	api       *apiClient
	timeout   time.Duration
	templates map[string]*template.Template // by product id
	out       io.Writer
}

func newCtlEnv(c *cli.Context) (*ctlEnv, error) {
	api, err := newAPIClient(c.String("api"), c.String("token"))
	if err != nil {
		return nil, err
	}
	env := &ctlEnv{api: api, timeout: c.Duration("timeout"), templates: map[string]*template.Template{}, out: c.App.Writer}
	for _, spec := range c.StringSlice("template") {
		pid, tpl, err := loadTemplateSpec(spec)
		if err != nil {
			return nil, err
		}
		env.templates[pid] = tpl
	}
	return env, nil
}

// template returns the data template of product pid: the one given with --template, else the
// emulator's (GET /api/products/{pid}), else nil: the values are then sent untyped and the
// emulator checks them.
func (e *ctlEnv) template(ctx context.Context, pid string) (*template.Template, error) {
	if t, ok := e.templates[pid]; ok {
		return t, nil
	}
	ctx, cancel := e.callCtx(ctx)
	defer cancel()
	var v productView
	err := e.api.getJSON(ctx, &v, "api", "products", pid)
	var aerr *apiError
	if errors.As(err, &aerr) && aerr.Status == http.StatusNotFound {
		e.templates[pid] = nil // no template there (or an emulator without this route)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t, err := template.Parse("template of "+pid+" from the emulator", v.templateJSON())
	if err != nil {
		return nil, fmt.Errorf("the emulator's template of %s: %w", pid, err)
	}
	e.templates[pid] = t
	return t, nil
}

// parseDeviceArg parses PID/DN.
func parseDeviceArg(s string) (pid, dn string, err error) {
	pid, dn, ok := strings.Cut(s, "/")
	if !ok || pid == "" || dn == "" || strings.Contains(dn, "/") {
		return "", "", usagef("%q: want PRODUCT_ID/DEVICE_NAME", s)
	}
	return pid, dn, nil
}

// callCtx bounds one API call by --timeout (plus a margin for the device's reply, which the
// API itself bounds by the same timeout).
func (e *ctlEnv) callCtx(parent context.Context) (context.Context, context.CancelFunc) {
	if e.timeout <= 0 {
		return context.WithCancel(parent)
	}
	return context.WithTimeout(parent, e.timeout+5*time.Second)
}

func ctlDevices(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("ctl devices takes no arguments")
	}
	env, err := newCtlEnv(c)
	if err != nil {
		return err
	}
	ctx, cancel := env.callCtx(c.Context)
	defer cancel()
	var raw json.RawMessage
	if err := env.api.getJSON(ctx, &raw, "api", "devices"); err != nil {
		return err
	}
	if c.Bool("json") {
		return printIndented(env.out, raw)
	}
	var devs []struct {
		ProductID  string `json:"product_id"`
		DeviceName string `json:"device_name"`
		Online     bool   `json:"online"`
	}
	if err := json.Unmarshal(raw, &devs); err != nil {
		return fmt.Errorf("GET /api/devices: unexpected answer: %v", err)
	}
	tw := tabwriter.NewWriter(env.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PRODUCT\tDEVICE\tONLINE")
	for _, d := range devs {
		online := "no"
		if d.Online {
			online = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.ProductID, d.DeviceName, online)
	}
	return tw.Flush()
}

func ctlGet(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("ctl get: want PID/DN")
	}
	pid, dn, err := parseDeviceArg(c.Args().First())
	if err != nil {
		return err
	}
	env, err := newCtlEnv(c)
	if err != nil {
		return err
	}
	ctx, cancel := env.callCtx(c.Context)
	defer cancel()
	var raw json.RawMessage
	if err := env.api.getJSON(ctx, &raw, "api", "devices", pid, dn); err != nil {
		return err
	}
	return printIndented(env.out, raw)
}

func printIndented(w io.Writer, raw []byte) error {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func ctlControl(c *cli.Context) error {
	if c.NArg() < 2 {
		return usagef("ctl control: want PID/DN KEY=VALUE...")
	}
	pid, dn, err := parseDeviceArg(c.Args().First())
	if err != nil {
		return err
	}
	as, err := parseAssignments(c.Args().Slice()[1:])
	if err != nil {
		return err
	}
	env, err := newCtlEnv(c)
	if err != nil {
		return err
	}
	tpl, err := env.template(c.Context, pid)
	if err != nil {
		return err
	}
	params, err := paramsJSON(as, func(key string) (*template.Define, error) {
		if tpl == nil {
			return nil, nil
		}
		p := tpl.Property(key)
		switch {
		case p == nil:
			return nil, fmt.Errorf("%s: product %s has no property %q (writable: %s)", key, pid, key, writableIDs(tpl))
		case !p.Writable():
			return nil, fmt.Errorf("%s: property %q is read-only (mode r)", key, key)
		}
		return p.Define, nil
	})
	if err != nil {
		return err
	}
	if tpl != nil {
		if err := tpl.CheckProperties(params, true); err != nil {
			return err
		}
	}
	ctx, cancel := env.callCtx(c.Context)
	defer cancel()
	var rep struct {
		Code    *int   `json:"code"`
		Status  string `json:"status"`
		Pending bool   `json:"pending"`
	}
	status, err := env.api.postJSON(ctx, timeoutQuery(env.timeout), map[string]json.RawMessage{"params": params}, &rep, "api", "devices", pid, dn, "control")
	if err != nil {
		return err
	}
	if status == http.StatusAccepted || rep.Pending {
		fmt.Fprintf(env.out, "pending: %s\n", rep.Status)
		return nil
	}
	return printReply(env.out, rep.Code, rep.Status)
}

// printReply prints a device's reply; a non-zero code is a failure (exit 1).
func printReply(w io.Writer, code *int, status string) error {
	if code == nil {
		return errors.New("the API's answer has no reply code")
	}
	if status == "" {
		status = "-"
	}
	if *code != 0 {
		return cli.Exit(fmt.Sprintf("device replied code %d: %s", *code, status), exitFail)
	}
	_, err := fmt.Fprintf(w, "code 0: %s\n", status)
	return err
}

func writableIDs(tpl *template.Template) string {
	var ids []string
	for _, p := range tpl.Properties {
		if p.Writable() {
			ids = append(ids, p.ID)
		}
	}
	return strings.Join(ids, ", ")
}

func ctlAction(c *cli.Context) error {
	if c.NArg() < 2 {
		return usagef("ctl action: want PID/DN ACTION-ID [KEY=VALUE...]")
	}
	pid, dn, err := parseDeviceArg(c.Args().First())
	if err != nil {
		return err
	}
	actionID := c.Args().Get(1)
	as, err := parseAssignments(c.Args().Slice()[2:])
	if err != nil {
		return err
	}
	env, err := newCtlEnv(c)
	if err != nil {
		return err
	}
	tpl, err := env.template(c.Context, pid)
	if err != nil {
		return err
	}
	var action *template.Action
	if tpl != nil {
		if action = tpl.Action(actionID); action == nil {
			var ids []string
			for _, a := range tpl.Actions {
				ids = append(ids, a.ID)
			}
			return fmt.Errorf("product %s has no action %q (actions: %s)", pid, actionID, strings.Join(ids, ", "))
		}
	}
	params, err := paramsJSON(as, func(key string) (*template.Define, error) {
		if action == nil {
			return nil, nil
		}
		for _, in := range action.Input {
			if in.ID == key {
				return in.Define, nil
			}
		}
		return nil, fmt.Errorf("%s: action %q has no input %q", key, actionID, key)
	})
	if err != nil {
		return err
	}
	if tpl != nil {
		if err := tpl.CheckActionInput(actionID, params); err != nil {
			return err
		}
	}
	ctx, cancel := env.callCtx(c.Context)
	defer cancel()
	var rep struct {
		Code     *int            `json:"code"`
		Status   string          `json:"status"`
		Response json.RawMessage `json:"response"`
		Error    string          `json:"error"`
	}
	_, err = env.api.postJSON(ctx, timeoutQuery(env.timeout), map[string]json.RawMessage{"params": params}, &rep, "api", "devices", pid, dn, "actions", actionID)
	var aerr *apiError
	if errors.As(err, &aerr) && aerr.Status == http.StatusBadGateway {
		// The device replied with a response that does not match the template; the API says why.
		return err
	}
	if err != nil {
		return err
	}
	if len(rep.Response) > 0 && string(rep.Response) != "{}" {
		if err := printIndented(env.out, rep.Response); err != nil {
			return err
		}
	}
	return printReply(env.out, rep.Code, rep.Status)
}

// eventRecord is one entry of a device document's "events".
type eventRecord struct {
	EventID     string          `json:"event_id"`
	Type        string          `json:"type"`
	Timestamp   int64           `json:"timestamp"`
	Params      json.RawMessage `json:"params"`
	ClientToken string          `json:"client_token"`
	Method      string          `json:"method"`
}

// key identifies an event record (for printing each once).
func (e eventRecord) key() string {
	return fmt.Sprintf("%s\x00%d\x00%s\x00%s", e.EventID, e.Timestamp, e.ClientToken, e.Method)
}

func (e eventRecord) same(o eventRecord) bool {
	return e.EventID == o.EventID && e.Timestamp == o.Timestamp && e.ClientToken == o.ClientToken && e.Method == o.Method
}

func ctlEvents(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("ctl events: want PID/DN")
	}
	pid, dn, err := parseDeviceArg(c.Args().First())
	if err != nil {
		return err
	}
	env, err := newCtlEnv(c)
	if err != nil {
		return err
	}
	asJSON := c.Bool("json")
	fetch := func(ctx context.Context) ([]eventRecord, error) {
		ctx, cancel := env.callCtx(ctx)
		defer cancel()
		var doc struct {
			Events []eventRecord `json:"events"`
		}
		err := env.api.getJSON(ctx, &doc, "api", "devices", pid, dn)
		return doc.Events, err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !c.Bool("follow") {
		events, err := fetch(ctx)
		for _, e := range events {
			printEvent(env.out, e, asJSON)
		}
		return err
	}
	interval := c.Duration("interval")
	if interval <= 0 {
		return usagef("ctl events: --interval must be positive")
	}
	// Live: the emulator's stream, each event printed once whether it comes from the
	// history fetched when the stream opens or from the stream.
	seen := newRecentKeys(2 * maxEventsKept)
	show := func(e eventRecord) {
		if seen.add(e.key()) {
			printEvent(env.out, e, asJSON)
		}
	}
	err = env.api.follow(ctx, url.Values{"device": {pid + "/" + dn}, "type": {"event"}},
		func() error {
			events, err := fetch(ctx)
			for _, e := range events {
				show(e)
			}
			return err
		},
		func(ev sseEvent) error {
			var d streamData
			var e eventRecord
			if json.Unmarshal(ev.Data, &d) != nil || json.Unmarshal(d.Data, &e) != nil {
				return fmt.Errorf("stream: unexpected event data %.200s", ev.Data)
			}
			show(e)
			return nil
		})
	if !errors.Is(err, errNoStream) {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return pollEvents(ctx, c.App.ErrWriter, interval, fetch, show)
}

// maxEventsKept is the emulator's per-device event history.
const maxEventsKept = 10000

// pollEvents follows the events of an emulator without /api/stream by fetching the device's
// history every interval.
func pollEvents(ctx context.Context, errw io.Writer, interval time.Duration, fetch func(context.Context) ([]eventRecord, error), show func(eventRecord)) error {
	events, err := fetch(ctx)
	if err != nil {
		return err
	}
	for _, e := range events {
		show(e)
	}
	var last *eventRecord
	if len(events) > 0 {
		last = &events[len(events)-1]
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		events, err := fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		fresh := newSince(events, last)
		if fresh == nil && last != nil && len(events) > 0 {
			// The last event seen fell out of the emulator's bounded history.
			fmt.Fprintln(errw, "tplgen: events: history wrapped; some events may have been missed")
			fresh = events
		}
		for _, e := range fresh {
			show(e)
		}
		if len(events) > 0 {
			last = &events[len(events)-1]
		}
	}
}

// newSince returns the events after last ([] when none; nil when last is no longer there).
func newSince(events []eventRecord, last *eventRecord) []eventRecord {
	if last == nil {
		return events
	}
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].same(*last) {
			return events[i+1:]
		}
	}
	return nil
}

func printEvent(w io.Writer, e eventRecord, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(e)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	params := string(e.Params)
	if params == "" {
		params = "{}"
	}
	ts := time.UnixMilli(e.Timestamp).UTC().Format("2006-01-02T15:04:05.000Z")
	fmt.Fprintf(w, "%s %-5s %s %s\n", ts, e.Type, e.EventID, params)
}
