// Package devlog uploads a device's logs to the platform (docs/PROTOCOL.md §7.2).
//
// The cloud decides how much it wants: the device asks for its log level on
// $log/operation/{pid}/{dn} ({"type":"get_log_level","clientToken":...}) and receives it on
// $log/operation/result/{pid}/{dn} ({"type":"get_log_level","log_level":0..4,...}); the cloud
// may also push that message at any time, and every push takes effect at once. Levels:
// 0 none, 1 error, 2 warn, 3 info, 4 debug.
//
// [Uploader.Handler] is an slog.Handler that keeps the records at or above the cloud's level in
// a bounded buffer and a background goroutine uploads them in batches with the newer signed
// HTTPS API: POST {endpoint}/device/reportlog, body
// {"ProductId","DeviceName","Message":["INF|...", ...]}, signed as in §6.2 with the DeviceSecret
// text (HMAC-SHA256) or the device's private key.
//
// # Guarantees
//
//   - Never blocks the caller: Handle formats the record and appends it under a short lock.
//   - Bounded memory: at most MaxRecords lines and MaxBytes bytes are buffered (WithBuffer);
//     when full the oldest lines are dropped. Each line is at most MaxLineBytes (longer lines
//     are cut and end in "…").
//   - Drops are counted ([Stats].Dropped) and reported: the next uploaded batch starts with a
//     line "WRN|...|devlog: N records dropped (...)".
//   - A failed upload is retried with backoff; the lines stay buffered (still bounded). A
//     refusal that retrying cannot fix (signature, unknown device, malformed request) drops
//     the batch and counts it.
//   - [Uploader.Close] stops accepting records, uploads what is buffered (bounded by its ctx)
//     and stops the goroutine.
//
// # Choices where the protocol is silent
//
//   - Until the cloud's level arrives, records at error level and above are kept
//     (WithInitialLevel changes that), so failures during boot are not lost.
//   - Line format: a three-letter level (DBG, INF, WRN, ERR, the prefixes the platform reads),
//     "|", the time (UTC, millisecond precision, from the connection's corrected clock
//     explorer.Conn.Now unless WithClock is given), "|", the message and the record's attributes as key=value pairs.
//   - log_level may arrive as a number or a numeric string; other values are ignored and logged.
//
// A device built on runtime/thing (every generated Device) starts its Uploader with
// dev.NewLogUploader(ctx, cfg); dev.Close then closes it.
//
// # The official SDKs
//
// The Python SDK has no cloud log upload (its logInit configures local logging only); the
// Java SDK's TXMqttLogImpl is the model for the API used here; the C SDK's legacy upload
// (devicelog.iot.cloud.tencent.com, §7.2) is not implemented.
package devlog
