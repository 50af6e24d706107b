package explorer

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
)

// Regions accepted in Config.Region (docs/PROTOCOL.md §1.1). The empty string means RegionChina.
const (
	RegionChina     = "china"
	RegionUSEast    = "us-east"
	RegionEurope    = "europe"
	RegionAPBangkok = "ap-bangkok"
)

// regionDomains maps a region key to the MQTT domain suffix; the host is "{pid}.{suffix}".
var regionDomains = map[string]string{
	RegionChina:     "iotcloud.tencentdevices.com",
	RegionUSEast:    "us-east.iotcloud.tencentdevices.com",
	RegionEurope:    "europe.iothub.tencentdevices.com",
	RegionAPBangkok: "ap-bangkok.iothub.tencentdevices.com",
}

// Ports of the platform's MQTT endpoints.
const (
	PortTLS   = 8883
	PortPlain = 1883
	// PortWebSocket and PortWebSocketTLS serve MQTT over WebSocket (docs/PROTOCOL.md §1.1):
	// key devices use ws on 80, certificate devices wss on 443.
	PortWebSocket    = 80
	PortWebSocketTLS = 443
)

// webSocketDomain is the platform's MQTT-over-WebSocket host suffix (docs/PROTOCOL.md §1.1).
const webSocketDomain = "ap-guangzhou.iothub.tencentdevices.com"

// DefaultWebSocketPath is the HTTP path of a ws:// or wss:// Broker given without one. The
// platform's documents do not name it; "/mqtt" is what the Python SDK (through paho) sends.
const DefaultWebSocketPath = "/mqtt"

// WebSocketBroker returns the platform's MQTT-over-WebSocket address for a product, for
// Config.Broker: "wss://{pid}.ap-guangzhou.iothub.tencentdevices.com:443/mqtt" when secure,
// else the "ws://...:80/mqtt" endpoint the platform documents for key devices. The plain ws
// endpoint sends the password unencrypted (Dial requires WithPlainTCP for it); prefer wss.
func WebSocketBroker(productID string, secure bool) string {
	if secure {
		return fmt.Sprintf("wss://%s.%s:%d%s", productID, webSocketDomain, PortWebSocketTLS, DefaultWebSocketPath)
	}
	return fmt.Sprintf("ws://%s.%s:%d%s", productID, webSocketDomain, PortWebSocket, DefaultWebSocketPath)
}

// Config is the identity of one device and where to connect it.
//
// Exactly one of DeviceSecret (key devices) or Certificate (certificate devices) must be set.
type Config struct {
	// ProductID is the product's id (10 upper-case alphanumerics on the platform).
	ProductID string
	// DeviceName is the device's name within the product.
	DeviceName string
	// DeviceSecret is the base64 device key (PSK) shown in the console.
	DeviceSecret string
	// Certificate is the device certificate and key for mutual TLS.
	Certificate *tls.Certificate
	// Region selects the platform region: "china" (default), "us-east", "europe", "ap-bangkok".
	Region string
	// Broker overrides Region with an explicit address: "tls://host:port", "ssl://host:port",
	// "tcp://host:port" or "mqtt://host:port", or MQTT over WebSocket: "wss://host[:port][/path]"
	// (default port 443) or "ws://host[:port][/path]" (default port 80; path default
	// DefaultWebSocketPath); see WebSocketBroker for the platform's hosts. Plain TCP and plain
	// ws also need WithPlainTCP. Reconnects, the offline queue and subscription restore work
	// the same over every transport.
	Broker string
}

// ClientID is the MQTT client id the platform expects: ProductID followed by DeviceName.
func (c Config) ClientID() string { return c.ProductID + c.DeviceName }

// redacted replaces secrets in every printed or logged form of a Config.
const redacted = "[redacted]"

func (c Config) kind() string {
	if c.Certificate != nil {
		return "certificate"
	}
	return "key"
}

// String describes the device without any secret; %v and %+v use it.
func (c Config) String() string {
	return fmt.Sprintf("%s/%s (%s device)", c.ProductID, c.DeviceName, c.kind())
}

// GoString is the %#v form: every field, with DeviceSecret and Certificate redacted.
func (c Config) GoString() string {
	secret, cert := `""`, "nil"
	if c.DeviceSecret != "" {
		secret = `"` + redacted + `"`
	}
	if c.Certificate != nil {
		cert = redacted
	}
	return fmt.Sprintf("explorer.Config{ProductID:%q, DeviceName:%q, DeviceSecret:%s, Certificate:%s, Region:%q, Broker:%q}",
		c.ProductID, c.DeviceName, secret, cert, c.Region, c.Broker)
}

// LogValue makes slog (text and JSON handlers alike) log the identity and endpoint, never
// the secret or the certificate's key.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("product_id", c.ProductID),
		slog.String("device_name", c.DeviceName),
		slog.String("kind", c.kind()),
	}
	if c.DeviceSecret != "" {
		attrs = append(attrs, slog.String("device_secret", redacted))
	}
	if c.Certificate != nil {
		attrs = append(attrs, slog.String("certificate", redacted))
	}
	if c.Region != "" {
		attrs = append(attrs, slog.String("region", c.Region))
	}
	if c.Broker != "" {
		attrs = append(attrs, slog.String("broker", c.Broker))
	}
	return slog.GroupValue(attrs...)
}

// brokerAddr is a resolved broker endpoint.
type brokerAddr struct {
	host string // host name or IP, used for TLS verification
	port string
	tls  bool
	ws   bool   // MQTT over WebSocket
	path string // WebSocket request path
}

func (b brokerAddr) hostPort() string { return net.JoinHostPort(b.host, b.port) }

func (b brokerAddr) String() string {
	scheme := "tcp"
	switch {
	case b.ws && b.tls:
		return "wss://" + b.hostPort() + b.path
	case b.ws:
		return "ws://" + b.hostPort() + b.path
	case b.tls:
		scheme = "tls"
	}
	return scheme + "://" + b.hostPort()
}

// Validate reports the first problem with the configuration, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// validate checks the config and resolves the broker address.
func (c Config) validate() (brokerAddr, error) {
	if err := checkIdentity("ProductID", c.ProductID); err != nil {
		return brokerAddr{}, err
	}
	if err := checkIdentity("DeviceName", c.DeviceName); err != nil {
		return brokerAddr{}, err
	}
	switch {
	case c.DeviceSecret != "" && c.Certificate != nil:
		return brokerAddr{}, configErr("both DeviceSecret and Certificate are set for %s/%s; set exactly one", c.ProductID, c.DeviceName)
	case c.DeviceSecret == "" && c.Certificate == nil:
		return brokerAddr{}, configErr("neither DeviceSecret nor Certificate is set for %s/%s; set exactly one", c.ProductID, c.DeviceName)
	case c.DeviceSecret != "":
		if _, err := decodeSecret(c.DeviceSecret); err != nil {
			return brokerAddr{}, configErr("DeviceSecret of %s/%s: %v", c.ProductID, c.DeviceName, err)
		}
	case len(c.Certificate.Certificate) == 0 || c.Certificate.PrivateKey == nil:
		return brokerAddr{}, configErr("Certificate of %s/%s has no certificate chain or no private key", c.ProductID, c.DeviceName)
	}
	return c.resolveBroker()
}

// checkIdentity rejects values that would corrupt the client id, the username or topics.
func checkIdentity(field, v string) error {
	if v == "" {
		return configErr("%s is empty", field)
	}
	if i := strings.IndexAny(v, "/+#; \t\r\n\x00"); i >= 0 {
		return configErr("%s %q contains %q, which is not allowed in topics or the MQTT username", field, v, v[i])
	}
	return nil
}

// decodeSecret base64-decodes a DeviceSecret; the error never contains the secret.
func decodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return nil, fmt.Errorf("not valid base64 (the console shows it as base64 text, e.g. 24 characters)")
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("decodes to an empty key")
	}
	return key, nil
}

func (c Config) resolveBroker() (brokerAddr, error) {
	if c.Broker == "" {
		region := c.Region
		if region == "" {
			region = RegionChina
		}
		domain, ok := regionDomains[region]
		if !ok {
			return brokerAddr{}, configErr("unknown Region %q (want %s, %s, %s or %s)", c.Region, RegionChina, RegionUSEast, RegionEurope, RegionAPBangkok)
		}
		return brokerAddr{host: c.ProductID + "." + domain, port: fmt.Sprint(PortTLS), tls: true}, nil
	}
	u, err := url.Parse(c.Broker)
	if err != nil || u.Host == "" {
		return brokerAddr{}, configErr("Broker %q is not a URL like tls://host:8883 or tcp://host:1883", c.Broker)
	}
	var b brokerAddr
	switch strings.ToLower(u.Scheme) {
	case "tls", "ssl", "mqtts":
		b.tls, b.port = true, fmt.Sprint(PortTLS)
	case "tcp", "mqtt":
		b.port = fmt.Sprint(PortPlain)
	case "wss":
		b.tls, b.ws, b.port = true, true, fmt.Sprint(PortWebSocketTLS)
	case "ws":
		b.ws, b.port = true, fmt.Sprint(PortWebSocket)
	default:
		return brokerAddr{}, configErr("Broker %q has scheme %q (want tls, ssl, tcp, mqtt, wss or ws)", c.Broker, u.Scheme)
	}
	switch {
	case b.ws:
		b.path = u.EscapedPath()
		if b.path == "" {
			b.path = DefaultWebSocketPath
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return brokerAddr{}, configErr("Broker %q has a query or fragment; want scheme://host:port/path", c.Broker)
		}
	case u.Path != "" && u.Path != "/":
		return brokerAddr{}, configErr("Broker %q has a path; want scheme://host:port only", c.Broker)
	}
	b.host = u.Hostname()
	if p := u.Port(); p != "" {
		b.port = p
	}
	if b.host == "" {
		return brokerAddr{}, configErr("Broker %q has no host", c.Broker)
	}
	return b, nil
}
