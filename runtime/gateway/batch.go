package gateway

import (
	"fmt"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
)

// maxRequestSize is the largest request payload the gateway sends: the platform's MQTT
// payload limit (docs/PROTOCOL.md §8.1).
const maxRequestSize = explorer.MaxPayloadSize

// maxReplySize bounds the platform's answer to one request, which repeats every device with
// its result: an online entry grows by the result field, so the answer to a full online
// request would not fit the limit. The margin leaves room for fields a platform may add.
const maxReplySize = explorer.MaxPayloadSize - 512

// replyEntrySize is the size of a device's entry in the answer, with the widest result code.
func replyEntrySize(e *wireDevice) int {
	return len(`{"product_id":"","device_name":"","result":-9999}`) + len(e.ProductID) + len(e.DeviceName)
}

// batches encodes the request op for entries as payloads of at most maxRequestSize bytes
// (and whose answers stay within maxReplySize) and at most g.batch devices each, in entry
// order. Each payload is
// {"type":op,"payload":{"devices":[...]}}: entries are encoded once each, so a batch is cut
// where the next entry would no longer fit, whatever the entries' sizes (a bind entry with
// its signature is about four times an online entry).
func (g *Gateway) batches(op string, entries []wireDevice) ([][]byte, error) {
	head := `{"type":"` + op + `","payload":{"devices":[`
	const tail = `]}}`
	var out [][]byte
	var cur []byte
	n, reply := 0, 0
	flush := func() {
		if n > 0 {
			out = append(out, append(cur, tail...))
		}
		cur, n, reply = nil, 0, len(head)+len(tail)
	}
	flush()
	for i := range entries {
		e, err := json.Marshal(&entries[i])
		if err != nil {
			return nil, fmt.Errorf("gateway: encode %s request: %w", op, err)
		}
		r := replyEntrySize(&entries[i]) + 1
		if len(head)+len(e)+len(tail) > maxRequestSize || len(head)+r+len(tail) > maxReplySize {
			return nil, fmt.Errorf("gateway: %s %.64q/%.64q: entry of %d bytes does not fit a request of %d bytes",
				op, entries[i].ProductID, entries[i].DeviceName, len(e), maxRequestSize)
		}
		if n > 0 && (n == g.batch || len(cur)+1+len(e)+len(tail) > maxRequestSize || reply+r > maxReplySize) {
			flush()
		}
		reply += r
		if n == 0 {
			cur = make([]byte, 0, min(maxRequestSize, len(head)+len(tail)+(len(e)+1)*min(g.batch, len(entries)-i)))
			cur = append(cur, head...)
		} else {
			cur = append(cur, ',')
		}
		cur = append(cur, e...)
		n++
	}
	flush()
	return out, nil
}
