// Package ota implements firmware over-the-air updates for IoT Explorer devices
// (docs/PROTOCOL.md §4): version reports, update offers, a resumable, verified, constant-memory
// download, and the progress/result reports the platform expects.
//
// A device creates a [Client] on its connection, registers [Client.OnUpdate], reports its
// running version with [Client.ReportVersion] and, when an update is offered, calls
// [Client.Download] (which reports "downloading" progress itself) and then [Client.Install]
// or [Client.ReportBurning] / [Client.ReportDone] / [Client.ReportFail]. After the restart into
// the new image the device reports the new version. A gateway runs the same API for a
// sub-device with [WithDevice].
//
// [Download] is usable on its own (no MQTT) with a progress callback. [Fetch] is the same
// downloader for any [File] (URL, MD5, size and an identity for resuming): resource downloads
// (docs/PROTOCOL.md §7.5) reuse it rather than a second implementation.
//
// # Download guarantees
//
//   - Memory stays constant whatever the image size (a fixed buffer streams to disk).
//   - Bytes go to dest+".part"; dest+".ota.json" is a checkpoint (version, URL without its
//     signature, size, MD5, bytes done) rewritten after an fsync every few MiB or second, so
//     a killed process resumes where the last checkpoint says. Resuming re-hashes the part
//     file, so corrupt resumed bytes are caught by the final MD5 check.
//   - A checkpoint for another version, size or MD5 restarts from zero; the same version at a
//     different (re-signed) URL resumes.
//   - dest appears only once the MD5 matches (rename); on a mismatch no file is left.
//   - Secrets stay out of logs and errors: URLs lose their query (the signature) and
//     [Firmware] and [File] redact it in String, GoString and LogValue.
//   - HTTPS only unless [WithInsecureHTTP]; the system trust store is used (COS URLs), or
//     [WithRootCAs] / [WithHTTPClient].
//
// # Failure codes
//
// [Code] maps a Download error to the report_progress result_code: −1 timeout / network
// ([ErrTimeout]), −2 not found ([ErrNotFound], HTTP 404), −3 signature expired
// ([ErrSignatureExpired], HTTP 403; also [ErrTLS]: a certificate the device does not trust,
// expired or issued for another name, or a server that does not speak TLS — never retried,
// never reported as a timeout, and the report's result_msg carries the cause), −4 MD5 or size mismatch ([ErrMD5Mismatch]), −5 burn
// failed ([BurnError]). Client.Download sends the fail report itself.
//
// # Mapping from the official Python SDK (explorer.py)
//
//	otaInit                  New(conn, opts...)
//	otaReportVersion         Client.ReportVersion (waits for report_version_rsp; re-sent on reconnect)
//	httpInit                 WithHTTPClient / WithRootCAs / WithInsecureHTTP
//	otaDownloadStart         Client.Download (or Download)
//	otaFetchYield            (internal: Download streams the body to disk)
//	otaIsFetching            Client.IsFetching / Client.State() == StateDownloading
//	otaIsFetchFinished       Client.IsFetchFinished / Client.State() == StateDownloaded
//	otaIoctlNumber           Firmware.Size, Client.Progress().Done / Total / Percent
//	otaIoctlString           Firmware.Version / Firmware.MD5 / Firmware.URL
//	otaResetMd5, otaMd5Update (internal: incremental MD5, re-hashed from disk on resume)
//	otaReportUpgradeSuccess  Client.ReportDone (or Client.Install)
//	otaReportUpgradeFail     Client.ReportFail(ctx, version, code, msg)
//	(progress reports)       automatic in Client.Download; Client.ReportProgress by hand
//
// All numbers inside report_progress are sent as strings, exactly as the official SDK does.
//
// # Delivery
//
// Every ctx-taking call returns soon after ctx ends whatever the network does (tested through
// a fault-injecting TCP proxy). ReportVersion and the burning/done/fail reports are QoS 1
// (at least once); progress reports are QoS 0 and superseded by the next; Download/Fetch
// return nil only for a complete, verified file (docs/ARCHITECTURE.md "Delivery contract").
package ota
