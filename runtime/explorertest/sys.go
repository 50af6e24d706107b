package explorertest

// The time service on $sys/operation (docs/PROTOCOL.md §7.1).

func (s *Server) initSys() error {
	s.handleUplink("$sys/operation/", s.handleSysOperation)
	return nil
}

type sysRequest struct {
	Type     *string  `json:"type"`
	Resource []string `json:"resource"`
}

// sysTimeReply keeps the platform's field order: type, time, ntptime1, ntptime2.
type sysTimeReply struct {
	Type     string `json:"type"`
	Time     int64  `json:"time"`
	NTPTime1 int64  `json:"ntptime1"`
	NTPTime2 int64  `json:"ntptime2"`
}

func (s *Server) handleSysOperation(u uplink) {
	received := s.clock()
	var req sysRequest
	if err := unmarshalUntrusted(u.Payload, &req); err != nil {
		s.log.Warn("explorertest: ignoring malformed $sys/operation request", "topic", u.Topic, "error", err.Error())
		return
	}
	switch {
	case req.Type == nil:
		s.log.Warn("explorertest: ignoring $sys/operation request", "topic", u.Topic, "field", "type", "error", "missing")
		return
	case *req.Type != "get":
		s.log.Warn("explorertest: ignoring $sys/operation request", "topic", u.Topic, "field", "type", "error", "unsupported type "+*req.Type)
		return
	}
	wantsTime := false
	for _, r := range req.Resource {
		wantsTime = wantsTime || r == "time"
	}
	if !wantsTime {
		s.log.Warn("explorertest: ignoring $sys/operation request", "topic", u.Topic, "field", "resource", "error", "does not ask for \"time\"")
		return
	}
	sent := s.clock()
	out, err := marshalJSON(sysTimeReply{Type: "get", Time: sent.Unix(), NTPTime1: received.UnixMilli(), NTPTime2: sent.UnixMilli()})
	if err != nil {
		s.log.Error("explorertest: encoding time reply", "error", err)
		return
	}
	topic := "$sys/operation/result/" + u.Device.ProductID + "/" + u.Device.DeviceName
	if err := s.Publish(topic, out, 0); err != nil {
		s.log.Warn("explorertest: time reply not sent", "topic", topic, "error", err.Error())
	}
}
