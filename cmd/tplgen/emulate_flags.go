package main

// Flag validation for `tplgen emulate`: everything is checked before any listener starts, each
// error names the flag and how to fix it. Malformed values are usage errors (exit 2); files
// that cannot be read and ports that cannot be bound are failures (exit 1).

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/runtime/template"
)

// emuProduct is one --template.
type emuProduct struct {
	pid  string
	file string // the flag value, as printed
	tpl  *template.Template
}

// emuDevice is one --device.
type emuDevice struct {
	pid, dn, secret string
}

// emuDynreg is one --dynreg.
type emuDynreg struct {
	pid, secret string
}

// emuAddr is one listen-address flag.
type emuAddr struct {
	flag string // "mqtt", "http", ...
	addr string // "" when the listener is off
}

// emulateConfig is the validated command line of `tplgen emulate`.
type emulateConfig struct {
	level    slog.Level
	format   string // "text" or "json"
	products []emuProduct
	devices  []emuDevice
	dynreg   []emuDynreg
	addrs    []emuAddr
	dataDir  string
	caFile   string
	// apiToken guards /api/ ("" leaves it open); tokenGenerated says it was made up here
	// because the HTTP API is reachable beyond loopback and no --api-token was given.
	apiToken       string
	tokenGenerated bool
	tokenKept      bool // the generated token was read from DIR/api-token (--data)
	// exposed lists the HTTP flags bound beyond loopback.
	exposed []string
}

// addrFlags are the listen-address flags, in the order they are reported.
var addrFlags = []string{"mqtt", "tls", "http", "https", "firmware-http", "firmware-https", "ws", "wss"}

// optionalAddr are the listeners an empty value turns off.
var optionalAddr = map[string]bool{"ws": true, "wss": true}

// parseEmulateFlags validates the whole command line without touching the network.
func parseEmulateFlags(c *cli.Context) (*emulateConfig, error) {
	if c.NArg() > 0 {
		return nil, usagef("emulate takes no arguments (got %q); products and devices are flags: --template FILE --device PID/DN", c.Args().Slice())
	}
	cfg := &emulateConfig{format: c.String("log-format"), dataDir: c.String("data"), caFile: c.String("ca-file")}
	level, err := parseLevel(c.String("log-level"))
	if err != nil {
		return nil, err
	}
	cfg.level = level
	if cfg.format != "text" && cfg.format != "json" {
		return nil, usagef("--log-format %q: want text or json", cfg.format)
	}
	if err := cfg.parseAddrs(c); err != nil {
		return nil, err
	}
	if err := cfg.parseProducts(c.StringSlice("template")); err != nil {
		return nil, err
	}
	if err := cfg.parseDevices(c.StringSlice("device")); err != nil {
		return nil, err
	}
	if err := cfg.parseDynreg(c.StringSlice("dynreg")); err != nil {
		return nil, err
	}
	if err := cfg.checkPaths(c.IsSet("data")); err != nil {
		return nil, err
	}
	if err := cfg.parseToken(c.String("api-token")); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, usagef("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// parseAddrs checks every listen address's syntax and that no two listeners want the same port.
func (cfg *emulateConfig) parseAddrs(c *cli.Context) error {
	type bound struct {
		flag, host string
	}
	byPort := map[int][]bound{}
	for _, name := range addrFlags {
		addr := c.String(name)
		if addr == "" {
			if optionalAddr[name] {
				continue
			}
			return usagef("--%s: empty address; want HOST:PORT, e.g. 127.0.0.1:0 for any free port", name)
		}
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			reason := err.Error()
			var ae *net.AddrError
			if errors.As(err, &ae) {
				reason = ae.Err
			}
			return usagef("--%s %q: %s; want HOST:PORT, e.g. 127.0.0.1:1883, 0.0.0.0:1883 or [::1]:1883", name, addr, reason)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return usagef("--%s %q: port %q is not a number from 0 to 65535 (0 picks a free port)", name, addr, portStr)
		}
		if port != 0 {
			for _, b := range byPort[port] {
				if b.host == host || isWildcard(b.host) || isWildcard(host) {
					return usagef("--%s %s and --%s %s both want port %d: give one of them another port (0 picks a free one)", b.flag, c.String(b.flag), name, addr, port)
				}
			}
			byPort[port] = append(byPort[port], bound{name, host})
		}
		cfg.addrs = append(cfg.addrs, emuAddr{flag: name, addr: addr})
		if (name == "http" || name == "https") && !isLoopbackHost(host) {
			cfg.exposed = append(cfg.exposed, "--"+name+" "+addr)
		}
	}
	return nil
}

func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// isLoopbackHost reports whether a listener on host is reachable from this machine only.
// Host names other than localhost count as reachable from elsewhere (they may resolve to
// anything).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseProducts loads every --template (file errors are failures, exit 1).
func (cfg *emulateConfig) parseProducts(specs []string) error {
	seen := map[string]string{}
	for _, spec := range specs {
		pid, tpl, err := loadTemplateSpec(spec)
		if err != nil {
			return err
		}
		if prev, dup := seen[pid]; dup {
			return usagef("--template %s: product %s is already defined by --template %s; give each product once", spec, pid, prev)
		}
		seen[pid] = spec
		cfg.products = append(cfg.products, emuProduct{pid, spec, tpl})
	}
	return nil
}

// loadTemplateSpec parses [PID=]FILE into the product id and its template.
func loadTemplateSpec(spec string) (string, *template.Template, error) {
	pid, file := "", spec
	// A PID never contains a path separator or a dot; a file name may contain '='.
	if before, after, ok := strings.Cut(spec, "="); ok && before != "" && !strings.ContainsAny(before, `/\.`) {
		pid, file = before, after
	}
	tpl, err := template.ParseFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("--template %s: %w", spec, err)
	}
	if pid == "" {
		pid = tpl.ProductID
	}
	if pid == "" {
		return "", nil, fmt.Errorf("--template %s: the template has no profile.ProductId; name the product as PID=FILE", spec)
	}
	if err := checkID("--template "+spec, "product id", pid); err != nil {
		return "", nil, err
	}
	return pid, tpl, nil
}

// checkID refuses what the platform refuses in a product id or device name (it would break the
// client id, the username or topics).
func checkID(flag, what, v string) error {
	if i := strings.IndexAny(v, "/+#; \t\r\n\x00="); i >= 0 {
		return usagef("%s: %s %q contains %q, which cannot appear in a client id, username or topic", flag, what, v, v[i])
	}
	return nil
}

// parseDeviceSpec parses PID/DN[=SECRET], checking the secret is usable.
func parseDeviceSpec(spec string) (emuDevice, error) {
	id, secret, hasSecret := strings.Cut(spec, "=")
	pid, dn, ok := strings.Cut(id, "/")
	if !ok || pid == "" || dn == "" || strings.Contains(dn, "/") {
		return emuDevice{}, usagef("--device %q: want PID/DN or PID/DN=SECRET (e.g. --device ZPHBLEB4J5/lamp1)", spec)
	}
	flag := "--device " + id
	if hasSecret {
		flag += "=SECRET"
	}
	if err := checkID(flag, "product id", pid); err != nil {
		return emuDevice{}, err
	}
	if err := checkID(flag, "device name", dn); err != nil {
		return emuDevice{}, err
	}
	if hasSecret {
		// The secret itself stays out of the message.
		key, err := base64.StdEncoding.DecodeString(secret)
		if err != nil || len(key) == 0 {
			return emuDevice{}, usagef("--device %s=SECRET: SECRET must be base64, e.g. printf mysecret | base64 (or leave out =SECRET for a random one)", id)
		}
	}
	return emuDevice{pid: pid, dn: dn, secret: secret}, nil
}

func (cfg *emulateConfig) parseDevices(specs []string) error {
	seen := map[string]bool{}
	for _, spec := range specs {
		d, err := parseDeviceSpec(spec)
		if err != nil {
			return err
		}
		key := d.pid + "/" + d.dn
		if seen[key] {
			return usagef("--device %s is given twice; give each device once", key)
		}
		seen[key] = true
		cfg.devices = append(cfg.devices, d)
	}
	return nil
}

func (cfg *emulateConfig) parseDynreg(specs []string) error {
	seen := map[string]bool{}
	for _, spec := range specs {
		pid, secret, _ := strings.Cut(spec, "=")
		if pid == "" {
			return usagef("--dynreg %q: want PID or PID=PRODUCT_SECRET", spec)
		}
		if err := checkID("--dynreg "+pid, "product id", pid); err != nil {
			return err
		}
		if seen[pid] {
			return usagef("--dynreg %s is given twice; give each product once", pid)
		}
		seen[pid] = true
		cfg.dynreg = append(cfg.dynreg, emuDynreg{pid, secret})
	}
	return nil
}

// checkPaths checks --data and --ca-file point where something can be written.
func (cfg *emulateConfig) checkPaths(dataSet bool) error {
	if dataSet && cfg.dataDir == "" {
		return usagef("--data: empty directory; want --data DIR (created when missing)")
	}
	if cfg.dataDir != "" {
		if fi, err := os.Stat(cfg.dataDir); err == nil && !fi.IsDir() {
			return fmt.Errorf("--data %s: not a directory; give a directory (created when missing)", cfg.dataDir)
		}
	}
	if cfg.caFile != "" {
		dir := filepath.Dir(cfg.caFile)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("--ca-file %s: directory %s does not exist; create it or write the CA elsewhere", cfg.caFile, dir)
		}
		if fi, err := os.Stat(cfg.caFile); err == nil && fi.IsDir() {
			return fmt.Errorf("--ca-file %s: is a directory; give a file path such as %s", cfg.caFile, filepath.Join(cfg.caFile, "ca.pem"))
		}
	}
	return nil
}

// parseToken decides the API token: the one given, or a new one when the HTTP API is bound
// beyond loopback without one.
func (cfg *emulateConfig) parseToken(token string) error {
	// An empty value (--api-token "" or TPLGEN_API_TOKEN=) counts as not given.
	if token != "" {
		if len(token) < 8 {
			return usagef("--api-token: the token is shorter than 8 characters; use a longer one, e.g. $(openssl rand -hex 16)")
		}
		for _, r := range token {
			if r <= ' ' || r > '~' {
				return usagef("--api-token: the token may contain only printable ASCII without spaces (it travels in an HTTP header)")
			}
		}
		cfg.apiToken = token
		return nil
	}
	if len(cfg.exposed) == 0 {
		return nil
	}
	if cfg.dataDir != "" { // the token generated by an earlier run on this data stays valid
		if b, err := os.ReadFile(filepath.Join(cfg.dataDir, apiTokenFile)); err == nil {
			if t := strings.TrimSpace(string(b)); validGeneratedToken(t) {
				cfg.apiToken, cfg.tokenGenerated, cfg.tokenKept = t, true, true
				return nil
			}
			return fmt.Errorf("--data %s: %s is not a token this tool wrote (32 hex digits); delete it to get a new one",
				cfg.dataDir, filepath.Join(cfg.dataDir, apiTokenFile))
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	cfg.apiToken, cfg.tokenGenerated = hex.EncodeToString(b[:]), true
	return nil
}

// checkPorts binds every fixed port once, then releases it, so that all ports that cannot be
// bound are reported together, before the platform starts anything. (Port 0 is always free.)
func (cfg *emulateConfig) checkPorts() error {
	var problems []string
	var busy []string
	for _, a := range cfg.addrs {
		if a.addr == "" {
			continue
		}
		_, port, _ := net.SplitHostPort(a.addr)
		if port == "0" {
			continue
		}
		ln, err := net.Listen("tcp", a.addr)
		if err == nil {
			_ = ln.Close()
			continue
		}
		reason := err.Error()
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			reason = op.Err.Error()
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			reason = "port already in use"
			busy = append(busy, "--"+a.flag)
		case errors.Is(err, syscall.EACCES):
			reason = "permission denied (ports below 1024 need privileges)"
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			reason = "this machine has no such address"
		}
		problems = append(problems, fmt.Sprintf("  --%s %s: %s", a.flag, a.addr, reason))
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(busy)
	hint := "stop what holds them or give other addresses (port 0 picks a free one)"
	if len(busy) > 0 {
		hint = "stop what holds them (another tplgen emulate?) or give other addresses, e.g. " + busy[0] + " 127.0.0.1:0 for any free port"
	}
	return fmt.Errorf("cannot listen on %d address(es); nothing was started:\n%s\n%s", len(problems), strings.Join(problems, "\n"), hint)
}

// apiTokenFile, in the --data directory, keeps a generated API token across runs, so scripts
// and open consoles keep working after a restart.
const apiTokenFile = "api-token"

func validGeneratedToken(t string) bool {
	if len(t) != 32 {
		return false
	}
	_, err := hex.DecodeString(t)
	return err == nil
}

// keepToken writes a newly generated API token into the data directory (mode 0600: it
// guards the API).
func (cfg *emulateConfig) keepToken() error {
	if !cfg.tokenGenerated || cfg.tokenKept || cfg.dataDir == "" {
		return nil
	}
	path := filepath.Join(cfg.dataDir, apiTokenFile)
	if err := os.WriteFile(path, []byte(cfg.apiToken+"\n"), 0o600); err != nil {
		return fmt.Errorf("--data %s: keeping the generated API token: %w", cfg.dataDir, err)
	}
	return nil
}
