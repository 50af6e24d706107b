// Package thing is the data-template (物模型) protocol engine of Tencent Cloud IoT Explorer
// for one device on a connection (a Transport; *explorer.Conn is the usual one).
//
// Thing is the untyped engine: raw JSON in and out, every value checked against the template.
// Device is its typed face, parameterised by the types tplgen generates: code generated for a
// product holds only what depends on its template (types, Validate and AppendJSON methods, a
// Spec binding the Handler's methods) and embeds *Device, which carries everything else. A
// typed Report is checked by the generated Validate and encoded by the generated AppendJSON,
// with no reflection and no second pass over the bytes.
//
// # Uplink
//
// Report, GetStatus, ClearControl and ReportInfo use $thing/up/property, PostEvent and
// PostEvents use $thing/up/event (QoS 1, as the official SDKs do). Every request carries a
// fresh clientToken "{ProductID}-{n}" and waits for the reply with the same token; requests
// may run concurrently. A reply with a non-zero code is a *ReplyError; no reply ends with the
// ctx's error (there is no separate reply timeout: give the ctx a deadline; the official C
// SDK waits 5 s). A reply lost with a dropped connection is never retried automatically. Values are checked against the template before anything is sent, so an
// out-of-range report fails locally with an error wrapping template.ErrInvalidValue (or
// ErrUnknownID for an id the template does not have).
//
// # Downlink
//
// control (on $thing/down/property) is checked against the template (writable properties
// only), applied through the ControlHandler and answered with control_reply carrying the
// same clientToken. action (on $thing/down/action) is checked (input), run through the
// ActionHandler, its output checked, and answered with action_reply whose "response" is the
// output. Controls are applied one at a time in arrival order; actions run concurrently up
// to WithMaxConcurrentActions. Handlers never run on the connection's delivery goroutine.
// control_reply and action_reply go out at QoS 1 (as the C SDK sends them), so a reply is
// not lost on a flaky link while the control or action it answers was applied.
//
// Reply codes the device sends:
//
//	0    applied / executed
//	400  malformed message (bad JSON, missing or mistyped field) whose clientToken was readable
//	403  an id not in the template: unknown property, struct member or action (template.ErrUnknownID)
//	406  a value of the wrong type or out of range, a missing input, or a read-only property in a
//	     control (template.ErrInvalidValue; template.ErrReadOnly wraps it)
//	503  the device is overloaded (control queue or action slots full)
//	-1   the handler failed, no handler is set, or an action's output does not match the
//	     template; a handler can choose another code by returning a *ReplyError (Errorf)
//
// Malformed downlink messages are logged with their topic and the offending field and never
// panic. Unknown methods are logged and ignored (the platform expects no answer).
//
// # Service topic
//
// $thing/down/service has one router: *_reply messages reach the call that waits for them
// (BindAppToken, RequestUnbind), bind_device/unbind_device reach WithBindingHandler (or a
// generated Handler's Binding method) as a BindingNotice, and every other method (the
// value-added services) reaches WithServiceHandler (or the Handler's Service method) untyped.
// On an explorer.Conn the Thing's subscriptions are owned: a program's own Subscribe to one of
// its topics fails with explorer.ErrFilterOwned rather than silently taking its messages.
//
// # Time and offline
//
// Every timestamp comes from Transport.Now, the connection's clock corrected to the
// platform's (so a device booting in 1970 still stamps real times). A request whose ctx ends
// while its message still waits in the connection's offline queue is withdrawn and never sent
// (the error wraps explorer.ErrNotSent): retrying it cannot make a duplicate.
//
// # Beside the data template
//
// The platform's other device features live in their own packages and are started through
// the Thing (or the generated Device, which has the same methods) for its device on its
// connection; Close stops them:
//
//	Now                server time: the connection's clock corrected to the platform's (§7.1)
//	OnRRPC             synchronous calls from the cloud, answered with the handler's bytes (runtime/rrpc, §7.3)
//	OnBroadcast        product-wide messages (runtime/rrpc, §7.4)
//	NewLogUploader     an slog.Handler uploading records at the cloud's log level (runtime/devlog, §7.2)
//	NewFiles           files the cloud pushes and device uploads, on the shared service topic (runtime/resource, §7.5)
//	NewResourceTasks   the $resource upload and download tasks (runtime/resource, §7.5)
//
// Section numbers are docs/PROTOCOL.md's.
//
// # Pending control
//
// Control sent while the device was offline is kept by the platform. After New and after
// every reconnect the Thing asks for it (get_status with type "control"), applies it through
// the same path as a live control and clears it (clear_control). A pending control that
// fails the template check is cleared and logged (it can never be applied); one whose handler
// failed is kept, so the next connect retries it. Delivery is at least once.
//
// For a gateway's sub-device (WithDevice) this is off by default: the sub-device's topics are
// usable only after the gateway brought it online again, so the gateway calls
// SyncPendingControl then.
//
// # Differences from the official Python SDK
//
// Our uplink messages match the ones the official Python SDK (tencentyun/iot-device-python)
// puts on the wire field for field, apart from tokens and times, except where that SDK is
// wrong (docs/PROTOCOL.md §2.4.2, §2.4.6, §9 item 6):
//
//   - control_reply carries "method":"control_reply" (the Python SDK omits it; the C and
//     Java SDKs and the documentation include it).
//   - a single event is sent as event_post with eventId/type/timestamp/params at the top level
//     (the documented single-object form); the Python SDK wraps one event in an "events"
//     array. For the same reason PostEvent accepts an events_reply as well as event_reply.
//   - report carries a millisecond "timestamp" (optional in the protocol; the Python SDK
//     sends none).
//   - control_reply and action_reply go at QoS 1, as the C SDK sends them (the Python SDK
//     uses QoS 0).
//
// get_status omits "type" for the default "report" and "showmeta" when false, as the SDKs do.
//
// # The official Python SDK's data-template calls
//
//	templateInit / templateDeinit           New (or generated New) / Close
//	templateSetup                           template.Parse (generated code embeds the template)
//	getPropertyList / getEventsList /
//	getActionList                           Thing.Template().Properties / .Events / .Actions
//	templateJsonConstructReportArray        the generated Properties type (or any JSON-able value)
//	templateReport                          Thing.Report, Device.Report (typed)
//	templateEventPost                       Thing.PostEvent / PostEvents, generated Post<Event>
//	templateReportSysInfo                   Thing.ReportInfo
//	templateGetStatus                       Thing.GetStatus
//	clearControl                            Thing.ClearControl
//	templateControlReply                    the ControlHandler's return value
//	templateActionReply                     the ActionHandler's return values
//	getNtpAccurateTime                      Thing.Now / Device.Now
//	rrpcInit / rrpcReply                    OnRRPC (the reply is the handler's return value)
//	broadcastInit                           OnBroadcast
//	resourceInit / resourceCreateUploadTask NewResourceTasks, then Tasks.Upload
package thing
