package explorertest

import (
	"errors"
	"fmt"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Topic ACL
//
// A device may use only topics that carry its own {pid}/{dn} (or, for a gateway, a sub-device's
// when Server.proxyAllowed says so). Direction matters: a device publishes on "up"/request
// topics and subscribes to "down"/result topics; publishing on a down topic or subscribing to
// an up topic is denied. Wildcards are allowed only after {pid}/{dn} (custom topics and the
// RRPC process id), never in place of them.
//
//	pattern                                    device may
//	$thing/up/{kind}/{pid}/{dn}                publish     kind: property event action service raw
//	$thing/down/{kind}/{pid}/{dn}              subscribe
//	$ota/report/{pid}/{dn}                     publish
//	$ota/update/{pid}/{dn}                     subscribe
//	$X/operation/{pid}/{dn}                    publish     X: gateway sys log shadow config template
//	$X/operation/result/{pid}/{dn}             subscribe
//	$resource/up/service/{pid}/{dn}            publish
//	$resource/down/service/{pid}/{dn}          subscribe
//	$rrpc/txd/{pid}/{dn}/{processId}           publish
//	$rrpc/rxd/{pid}/{dn}/{processId}           subscribe   ({processId} may be + or #)
//	$broadcast/rxd/{pid}/{dn}                  subscribe
//	{pid}/{dn}/{custom...}                     both        (at least one level after {dn})
//
// Anything else (other devices' topics, $SYS, unknown $ prefixes) is denied. A denied publish
// disconnects the client whatever its QoS, so a mistake is never silently lost; a denied
// subscription is answered with SUBACK failure 0x80.

const maxTopicLen = 255 // docs/PROTOCOL.md §8.1

type access uint8

const (
	accessPublish access = 1 << iota
	accessSubscribe
)

// topicPattern levels: literal, "{pid}", "{dn}", "{kind}" (one of kinds), "{id}" (one level,
// wildcard allowed) or "{custom}" (one or more levels, wildcards allowed; last).
type topicPattern struct {
	levels []string
	kinds  []string
	access access
}

var thingKinds = []string{"property", "event", "action", "service", "raw"}

var topicPatterns = func() []topicPattern {
	p := func(a access, kinds []string, levels ...string) topicPattern {
		return topicPattern{levels: levels, kinds: kinds, access: a}
	}
	pats := []topicPattern{
		p(accessPublish, thingKinds, "$thing", "up", "{kind}", "{pid}", "{dn}"),
		p(accessSubscribe, thingKinds, "$thing", "down", "{kind}", "{pid}", "{dn}"),
		p(accessPublish, nil, "$ota", "report", "{pid}", "{dn}"),
		p(accessSubscribe, nil, "$ota", "update", "{pid}", "{dn}"),
		p(accessPublish, nil, "$resource", "up", "service", "{pid}", "{dn}"),
		p(accessSubscribe, nil, "$resource", "down", "service", "{pid}", "{dn}"),
		p(accessPublish, nil, "$rrpc", "txd", "{pid}", "{dn}", "{id}"),
		p(accessSubscribe, nil, "$rrpc", "rxd", "{pid}", "{dn}", "{id}"),
		p(accessSubscribe, nil, "$broadcast", "rxd", "{pid}", "{dn}"),
		p(accessPublish|accessSubscribe, nil, "{pid}", "{dn}", "{custom}"),
	}
	for _, x := range []string{"$gateway", "$sys", "$log", "$shadow", "$config", "$template"} {
		pats = append(pats,
			p(accessPublish, nil, x, "operation", "{pid}", "{dn}"),
			p(accessSubscribe, nil, x, "operation", "result", "{pid}", "{dn}"))
	}
	return pats
}()

func hasWildcard(level string) bool { return strings.ContainsAny(level, "+#") }

// match reports whether topic (or filter) fits the pattern and returns its {pid}/{dn}.
func (p topicPattern) match(levels []string) (DeviceID, bool) {
	var id DeviceID
	for i, pl := range p.levels {
		if pl == "{custom}" {
			return id, len(levels) > i
		}
		if i >= len(levels) {
			return id, false
		}
		l := levels[i]
		switch pl {
		case "{id}":
			if l == "" {
				return id, false
			}
		case "{pid}", "{dn}", "{kind}":
			if l == "" || hasWildcard(l) || (pl == "{pid}" && l[0] == '$') {
				return id, false
			}
			switch pl {
			case "{pid}":
				id.ProductID = l
			case "{dn}":
				id.DeviceName = l
			default:
				found := false
				for _, k := range p.kinds {
					found = found || k == l
				}
				if !found {
					return id, false
				}
			}
		default:
			if l != pl {
				return id, false
			}
		}
	}
	return id, len(levels) == len(p.levels)
}

// classifyTopic finds the pattern a topic or filter belongs to.
func classifyTopic(topic string) (owner DeviceID, a access, ok bool) {
	levels := strings.Split(unaliasSys(topic), "/")
	for _, p := range topicPatterns {
		if id, ok := p.match(levels); ok {
			return id, p.access, true
		}
	}
	return DeviceID{}, 0, false
}

// topicOwner returns the {pid}/{dn} a platform topic carries.
func topicOwner(topic string) (DeviceID, bool) {
	id, _, ok := classifyTopic(topic)
	return id, ok
}

var (
	errTopicUnknown = errors.New("topic is not a platform topic ($thing/*, $ota/*, $sys/* or {ProductID}/{DeviceName}/*)")
	errTopicTooLong = fmt.Errorf("topic is longer than %d bytes", maxTopicLen)
)

// checkTopic applies the ACL for device dev using topic (publish) or filter (subscribe).
func (s *Server) checkTopic(dev DeviceID, topic string, want access) error {
	if len(topic) > maxTopicLen {
		return errTopicTooLong
	}
	if want == accessPublish && strings.ContainsAny(topic, "+#") {
		return errors.New("a publish topic may not contain the wildcards + or #")
	}
	owner, a, ok := classifyTopic(topic)
	if !ok {
		return errTopicUnknown
	}
	if owner != dev && (s.proxyAllowed == nil || !s.proxyAllowed(dev, owner)) {
		return fmt.Errorf("topic belongs to device %s, not to %s", owner, dev)
	}
	if a&want == 0 {
		if want == accessPublish {
			return errors.New("devices may not publish on this topic (it is cloud-to-device)")
		}
		return errors.New("devices may not subscribe to this topic (it is device-to-cloud)")
	}
	return nil
}

// OnACLCheck is the broker's ACL: subscriptions (write=false with a filter), publishes
// (write=true) and every delivery to a subscriber (write=false with a topic name).
func (h *platformHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	sess := sessionOf(cl)
	if sess == nil {
		return false
	}
	want := accessSubscribe
	if write {
		want = accessPublish
	}
	return h.s.checkTopic(sess.id, topic, want) == nil
}

// mochi drops client publishes to topics that start with "$SYS" case-insensitively, which
// includes the platform's "$sys/operation". Such publishes are renamed to an alias while the
// broker handles them and renamed back for the uplink router.
const (
	sysPrefix = "$sys/"
	sysAlias  = "$explorertest-sys/"
)

func unaliasSys(topic string) string {
	if strings.HasPrefix(topic, sysAlias) {
		return sysPrefix + topic[len(sysAlias):]
	}
	return topic
}

// OnPacketRead enforces the platform's PUBLISH restrictions before the broker acts on the
// packet. Returning ErrRejectPacket makes the broker drop the connection.
func (h *platformHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish {
		return pk, nil
	}
	sess := sessionOf(cl)
	if sess == nil {
		return pk, packets.ErrRejectPacket
	}
	if strings.HasPrefix(pk.TopicName, sysAlias) {
		return pk, h.refusePublish(sess, pk, "reserved topic")
	}
	switch {
	case pk.FixedHeader.Qos > 1:
		return pk, h.refusePublish(sess, pk, "QoS 2 is not supported by the platform")
	case pk.FixedHeader.Retain:
		return pk, h.refusePublish(sess, pk, "retained messages are not supported by the platform")
	case len(pk.Payload) > MaxPayload:
		return pk, h.refusePublish(sess, pk, fmt.Sprintf("payload of %d bytes exceeds the %d-byte limit", len(pk.Payload), MaxPayload))
	}
	if err := h.s.checkTopic(sess.id, pk.TopicName, accessPublish); err != nil {
		return pk, h.refusePublish(sess, pk, err.Error())
	}
	if strings.HasPrefix(pk.TopicName, sysPrefix) {
		pk.TopicName = sysAlias + pk.TopicName[len(sysPrefix):]
	}
	return pk, nil
}

func (h *platformHook) refusePublish(sess *session, pk packets.Packet, reason string) error {
	h.s.log.Warn("explorertest: PUBLISH refused, disconnecting the client",
		"device", sess.id.String(), "topic", unaliasSys(pk.TopicName), "qos", pk.FixedHeader.Qos, "bytes", len(pk.Payload),
		"code", "disconnect", "reason", reason)
	return packets.ErrRejectPacket
}

// OnDisconnect logs a connection the broker closed because a packet was too large to read at
// all (its payload is beyond MaxPayload by more than any header; smaller oversize payloads are
// refused in OnPacketRead, with their topic).
func (h *platformHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	if !errors.Is(err, packets.ErrPacketTooLarge) {
		return
	}
	sess := sessionOf(cl)
	if sess == nil {
		return
	}
	h.s.log.Warn("explorertest: PUBLISH refused, disconnecting the client", "device", sess.id.String(),
		"code", "disconnect", "reason", fmt.Sprintf("packet exceeds %d bytes: the payload is over the platform's %d-byte limit (not read)", h.s.capabilities().MaximumPacketSize, MaxPayload))
}

// OnSubscribe refuses QoS 2 subscriptions: the filter is replaced by an invalid one so the
// broker answers SUBACK 0x80 for it (mochi would otherwise downgrade to QoS 1). Topic checks
// happen in OnACLCheck; the same check here logs a refusal and tells the features (onSubscribed)
// about an accepted filter.
func (h *platformHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	sess := sessionOf(cl)
	for i, f := range pk.Filters {
		reason := ""
		switch {
		case f.Qos > 1:
			reason = "QoS 2 is not supported by the platform"
			pk.Filters[i].Filter = "#/refused-qos2" // '#' not last: invalid, so refused
		case sess != nil:
			if err := h.s.checkTopic(sess.id, f.Filter, accessSubscribe); err != nil {
				reason = err.Error()
			}
		}
		switch {
		case reason != "" && sess != nil:
			h.s.log.Warn("explorertest: SUBSCRIBE refused", "device", sess.id.String(), "topic", f.Filter, "qos", f.Qos, "code", packets.ErrUnspecifiedError.Code, "reason", reason)
		case reason == "" && sess != nil:
			h.s.emitSubscribed(sess.id, f.Filter)
		}
	}
	return pk
}
