package resource_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/resource"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

const sharedTpl = `{"version":"1.0","profile":{"ProductId":"RESPROD001","CategoryId":"1"},
"properties":[{"id":"power_switch","name":"power","desc":"","required":true,"mode":"rw",
"define":{"type":"bool","mapping":{"0":"off","1":"on"}}}],"events":[],"actions":[]}`

// A device with a Thing (which owns $thing/down/service) uses Files through the Thing's
// service handler.
func TestFilesSharesTheServiceTopicWithAThing(t *testing.T) {
	srv, conn := platform(t)
	ctx := testCtx(t)
	tpl, err := template.Parse("tpl.json", []byte(sharedTpl))
	if err != nil {
		t.Fatal(err)
	}
	srv.AddProduct(tpl)
	dir := t.TempDir()
	files, err := resource.NewFiles(ctx, conn, dir, append(trust(srv), resource.WithSharedServiceTopic())...)
	if err != nil {
		t.Fatal(err)
	}
	th, err := thing.New(conn, tpl, thing.WithServiceHandler(files.HandleService))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close(ctx)
	data := randomBytes(t, 50_000)
	srv.UploadResource(pid, "tone.wav", "1", "AUDIO", bytes.NewReader(data))
	srv.PushResource(pid, "dev1", "tone.wav", "")
	waitJob(t, srv, "tone.wav", func(j explorertest.ResourceJob) bool { return j.State == "done" })
	if got, _ := os.ReadFile(filepath.Join(dir, "tone.wav")); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if _, err := files.ReportVersion(ctx, []resource.Resource{{Name: "tone.wav", Version: "1", Type: "AUDIO"}}); err != nil {
		t.Fatalf("report_version_rsp through the Thing: %v", err)
	}
}

// Without WithSharedServiceTopic, NewFiles on a connection whose Thing owns the service topic
// fails clearly instead of taking the Thing's messages.
func TestFilesRefusedWhenAThingOwnsTheTopic(t *testing.T) {
	srv, conn := platform(t)
	ctx := testCtx(t)
	tpl, err := template.Parse("tpl.json", []byte(sharedTpl))
	if err != nil {
		t.Fatal(err)
	}
	srv.AddProduct(tpl)
	th, err := thing.New(conn, tpl)
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close(ctx)
	if _, err := resource.NewFiles(ctx, conn, t.TempDir()); !errors.Is(err, explorer.ErrFilterOwned) {
		t.Fatalf("got %v, want ErrFilterOwned", err)
	}
}
