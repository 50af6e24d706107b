package dynreg

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// Credentials are what registration issued to one device: either a DeviceSecret (PSK) or a
// certificate and private key (PEM).
type Credentials struct {
	ProductID    string
	DeviceName   string
	DeviceSecret string // PSK products: base64 DeviceSecret
	CertPEM      []byte // certificate products: device certificate
	KeyPEM       []byte // certificate products: private key
}

// Kind returns "psk", "cert" or "" (empty credentials).
func (c *Credentials) Kind() string {
	switch {
	case c.DeviceSecret != "":
		return "psk"
	case len(c.CertPEM) > 0:
		return "cert"
	}
	return ""
}

// String describes the credentials without the secret or the key. It has a value receiver
// so that values and pointers are both covered (a nil pointer prints as <nil>).
func (c Credentials) String() string {
	return fmt.Sprintf("dynreg.Credentials{ProductID:%q DeviceName:%q Kind:%s <secrets redacted>}", c.ProductID, c.DeviceName, c.Kind())
}

// GoString is String, so %#v does not print secrets either.
func (c Credentials) GoString() string { return c.String() }

// LogValue keeps secrets out of structured logs.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("product", c.ProductID), slog.String("device", c.DeviceName), slog.String("kind", c.Kind()))
}

// Validate checks that the credentials name a device and hold exactly one usable kind of secret.
func (c *Credentials) Validate() error {
	switch {
	case c == nil:
		return errors.New("dynreg: nil credentials")
	case c.ProductID == "":
		return errors.New("dynreg: credentials: productId is empty")
	case c.DeviceName == "":
		return errors.New("dynreg: credentials: deviceName is empty")
	case c.DeviceSecret != "" && (len(c.CertPEM) > 0 || len(c.KeyPEM) > 0):
		return errors.New("dynreg: credentials: both deviceSecret and a certificate are set; want one")
	case c.DeviceSecret != "":
		if _, err := base64.StdEncoding.DecodeString(c.DeviceSecret); err != nil {
			return errors.New("dynreg: credentials: deviceSecret is not base64")
		}
		return nil
	case len(c.CertPEM) == 0 && len(c.KeyPEM) == 0:
		return errors.New("dynreg: credentials: neither deviceSecret nor certificate is set")
	case len(c.CertPEM) == 0:
		return errors.New("dynreg: credentials: clientKey is set but clientCert is empty")
	case len(c.KeyPEM) == 0:
		return errors.New("dynreg: credentials: clientCert is set but clientKey is empty")
	}
	return nil
}

// credentialsFile is the on-disk JSON form; PEM is kept as text so the file is readable.
type credentialsFile struct {
	ProductID    string `json:"productId"`
	DeviceName   string `json:"deviceName"`
	DeviceSecret string `json:"deviceSecret,omitempty"`
	ClientCert   string `json:"clientCert,omitempty"`
	ClientKey    string `json:"clientKey,omitempty"`
}

// SaveCredentials writes c as JSON to path with mode 0600, atomically: a crash leaves either the
// old file or the new one, never a truncated mix.
func SaveCredentials(path string, c *Credentials) error {
	if err := c.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(credentialsFile{
		ProductID: c.ProductID, DeviceName: c.DeviceName, DeviceSecret: c.DeviceSecret,
		ClientCert: string(c.CertPEM), ClientKey: string(c.KeyPEM),
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("dynreg: encoding credentials: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("dynreg: saving credentials: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	// CreateTemp already uses 0600; Chmod makes that explicit and independent of the umask.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("dynreg: saving credentials: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("dynreg: saving credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("dynreg: saving credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("dynreg: saving credentials: %w", err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("dynreg: saving credentials: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // persist the rename; not all filesystems support it
		d.Close()
	}
	return nil
}

// LoadCredentials reads credentials written by SaveCredentials and validates them.
func LoadCredentials(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dynreg: loading credentials: %w", err)
	}
	var f credentialsFile
	if err := jsonguard.Unmarshal(data, &f); err != nil {
		// The file holds secrets: never echo its content.
		return nil, fmt.Errorf("dynreg: loading credentials: %s is not a credentials JSON object", path)
	}
	c := &Credentials{ProductID: f.ProductID, DeviceName: f.DeviceName, DeviceSecret: f.DeviceSecret}
	if f.ClientCert != "" {
		c.CertPEM = []byte(f.ClientCert)
	}
	if f.ClientKey != "" {
		c.KeyPEM = []byte(f.ClientKey)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
