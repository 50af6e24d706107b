// Package explorer is the device connection to Tencent Cloud IoT Explorer: device identity,
// Tencent's MQTT username/password signing, TLS against the embedded Tencent root CA, and a
// self-healing MQTT connection built on paho.mqtt.golang.
//
// A [Conn] is created with [Dial] and stays usable until [Conn.Close]:
//
//   - Every (re)connect signs fresh credentials. The username's expiry is a fixed far-future
//     value by default ([SignatureExpiryNever]), so the login does not depend on the device
//     clock; [WithSignatureExpiry] opts into "now + d".
//   - Time: [WithClock] is the device clock; after every connect the Conn learns the offset to
//     the platform's clock over $sys/operation and [Conn.Now] returns the corrected time (a
//     clock before 2024 is taken as never set: Dial then waits for the platform's time).
//   - After a reconnect every subscription is re-sent (clean session; the broker's session is
//     never relied on; several SUBSCRIBEs in flight at a time), then the offline queue is
//     flushed in publish order, then the [Conn.OnConnect] hooks run.
//   - While disconnected, [Conn.Publish] waits for the reconnect in a bounded offline queue
//     (see [WithQueueSize]), never longer than its ctx: a message whose ctx ends while it is
//     still queued is withdrawn and never sent (the error wraps [ErrNotSent]), so a caller's
//     retry cannot make a duplicate. [Conn.Enqueue] is the explicit fire-and-forget form: it
//     returns once the message is queued and the message is kept until the broker has it.
//     A full queue is reported as [ErrQueueFull] rather than dropping anything silently.
//   - Handlers never run on paho's network goroutine. Each subscription has its own ordered
//     backlog, a global semaphore bounds how many handlers run at once, panics are recovered
//     and logged with the topic, and every call gets a deadline (see [WithHandlerTimeout]).
//     When a subscription's backlog is full (its handler is stuck), new messages for it are
//     dropped, logged at error level and counted in [Stats].DroppedMessages; other
//     subscriptions and the keep-alive carry on.
//   - Many subscriptions are cheap: a received message finds exact filters by map lookup
//     (only wildcard filters are matched one by one), and an idle subscription holds no
//     goroutine. A gateway has four per sub-device, up to thousands.
//
// Errors wrap short sentinel values usable with errors.Is ([ErrBadCredentials], [ErrTLS], ...);
// the wrapping error names what failed and says what to check. Secrets never appear in logs
// or errors.
//
// # The official Python SDK's MQTT calls
//
//	connect / disconnect                  Dial / Conn.Close
//	subscribe / unsubscribe / publish     Conn.Subscribe / Conn.Unsubscribe / Conn.Publish
//	registerMqttCallback                  WithOnConnect, WithOnConnectionLost (and Conn.OnConnect)
//	registerUserCallback                  the Handler given to Conn.Subscribe
//	isMqttConnected / getConnectState     Conn.IsConnected / Conn.State
//	setReconnectInterval                  WithReconnectBackoff
//	setMessageTimout                      WithAckTimeout
//	setKeepaliveInterval                  WithKeepAlive
//	getNtpAccurateTime                    Conn.ServerTime (and Conn.Now, kept corrected)
package explorer
