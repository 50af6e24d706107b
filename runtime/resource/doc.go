// Package resource moves files other than firmware between a device and the platform, in both
// generations of the protocol (docs/PROTOCOL.md §7.5):
//
//   - [Files], the Explorer "file management" on $thing/up|down/service/{pid}/{dn} (method-keyed):
//     report_version (the device's resource list) → report_version_rsp; update_resource pushed
//     by the cloud, downloaded with runtime/ota's downloader (resume, MD5, progress) and
//     answered with report_progress / report_result; del_resource → del_result; device uploads
//     with request_url → request_url_resp → HTTP PUT to the presigned URL → report_post_result.
//   - [Tasks], the "resource management" on $resource/up|down/service/{pid}/{dn} (type-keyed):
//     create_upload_task → create_upload_task_rsp {url} → HTTP PUT with Content-MD5 and
//     report_upload_progress; get_download_task → get_download_task_rsp, or a "download" task
//     pushed by the cloud, downloaded with report_download_progress.
//
// Downloads land in the directory given to NewFiles/NewTasks under the resource name, which must
// be a plain file name (no path separators, not "." or "..", at most 64 bytes). A killed
// process resumes a download where it stopped (the .part and .ota.json files of runtime/ota).
//
// # Choices where the protocol is silent
//
//   - Device-to-cloud numbers in Files messages are strings (percent, result_code), as the C SDK
//     sends them; Tasks messages use JSON numbers, as the documentation and the Python SDK do.
//     Received numbers may be either.
//   - Failure codes of report_result are the C SDK's: −1 timeout/network, −2 file not found,
//     −3 URL refused or expired, −4 MD5 mismatch, −5 install failed, −6 no space, −7 delete
//     failed, −8 upload failed ([FailCode]).
//   - A get_download_task_rsp without a url means "no task".
//   - The cloud may push {"type":"download",...} with the fields of get_download_task_rsp (the C
//     SDK handles both the same way); after a PUT the platform emulator sends
//     {"type":"upload_result","name","result_code","result_msg"}.
//   - Files subscribes $thing/down/service itself (owned: a later Subscribe of the filter fails
//     with explorer.ErrFilterOwned) unless [WithSharedServiceTopic] is given; then the owner of
//     that subscription (a runtime/thing Thing: thing.WithServiceHandler(files.HandleService))
//     passes the messages to [Files.HandleService]. Without it, NewFiles on a connection whose
//     Thing owns the topic fails with explorer.ErrFilterOwned.
//
// A device built on runtime/thing (every generated Device) starts them with dev.NewFiles and
// dev.NewResourceTasks, which wire the shared service topic up and stop at dev.Close.
//
// # The official SDKs
//
//	Python resourceInit                      NewTasks
//	Python resourceCreateUploadTask          Tasks.Upload (create, PUT, progress, done)
//	Python resourceReportUploadProgress      automatic in Tasks.Upload
//	Python resourceUploadfile                Tasks.Upload
//	C IOT_FileManage_Init / _Report          NewFiles / Files.ReportVersion
//	C IOT_FileManage_StartDownload / Fetch   Files.Download (automatic without OnUpdate)
//	C IOT_FileManage_Post                    Files.Upload
package resource
