package explorertest

import (
	"net"
	"net/url"
)

// deviceBase returns base (the URL of a listener bound to addr) as device id can reach it.
// A listener on a wildcard address (0.0.0.0, [::]) has no address of its own to hand out:
// the device gets the local address its own MQTT connection reached, which is an address of
// this machine the device can route to (127.0.0.1 only works for devices on this machine).
// Other listeners, and devices without a direct connection (a gateway's sub-devices fall back
// to their gateway's), keep base with a wildcard host written as 127.0.0.1.
func (s *Server) deviceBase(id DeviceID, base, addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return base
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return base
	}
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	local := s.reachedIP(id)
	if local == nil {
		local = net.IPv4(127, 0, 0, 1)
	}
	if p := u.Port(); p != "" {
		u.Host = net.JoinHostPort(local.String(), p)
	} else if local.To4() == nil {
		u.Host = "[" + local.String() + "]"
	} else {
		u.Host = local.String()
	}
	return u.String()
}

// reachedIP is the local IP address device id's connection (or its gateway's) came in on, or
// nil when there is none.
func (s *Server) reachedIP(id DeviceID) net.IP {
	if ip := s.sessionIP(id); ip != nil {
		return ip
	}
	if gw, ok := s.gatewayOf(id); ok {
		return s.sessionIP(gw)
	}
	return nil
}

func (s *Server) sessionIP(id DeviceID) net.IP {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	d := s.devices[id]
	if d == nil || d.session == nil || d.session.conn == nil {
		return nil
	}
	a, ok := d.session.conn.LocalAddr().(*net.TCPAddr)
	if !ok || a.IP.IsUnspecified() {
		return nil
	}
	return a.IP
}
