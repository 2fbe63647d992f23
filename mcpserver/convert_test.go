package mcpserver

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
)

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

func TestImageType(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"plot.png", pngBytes, "image/png"},
		{"PLOT.PNG", pngBytes, "image/png"},
		{"a.png", []byte("not a png"), ""},
		{"photo.jpg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF"), "image/jpeg"},
		{"photo.jpeg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF"), "image/jpeg"},
		{"photo.jpeg", pngBytes, ""},
		{"d.svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`), "image/svg+xml"},
		{"d.svg", []byte("\xff\xfe<svg"), ""},
		{"d.svg", []byte("plain text"), ""},
		{"data.csv", pngBytes, ""},
	} {
		if got := imageType(c.name, c.data); got != c.want {
			t.Errorf("imageType(%q, %q) = %q, want %q", c.name, c.data, got, c.want)
		}
	}
}

func TestRunResultImages(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(pngBytes)
	r := &api.Result{Status: api.StatusOK, Stdout: "hi\n", Files: []api.OutputFile{
		{Name: "plot.png", Content: b64, Encoding: "base64", Size: int64(len(pngBytes))},
		{Name: "cut.png", Content: b64[:8], Encoding: "base64", Size: 100, Truncated: true},
		{Name: "notes.txt", Content: "text", Size: 4},
		{Name: "*.svg", Missing: true},
		{Name: "link.png", Type: "symlink"},
	}}
	for _, c := range []struct {
		explicit bool
		names    []string
	}{
		{false, []string{"plot.png", "cut.png", "notes.txt", "link.png"}},
		{true, []string{"plot.png", "cut.png", "notes.txt", "*.svg", "link.png"}},
	} {
		out, imgs := runResult(r, c.explicit)
		if len(out.Files) != len(c.names) {
			t.Fatalf("explicit=%v: files %+v, want %v", c.explicit, out.Files, c.names)
		}
		for i, f := range out.Files {
			if f.Name != c.names[i] {
				t.Errorf("explicit=%v: file %d is %s, want %s", c.explicit, i, f.Name, c.names[i])
			}
		}
		if len(imgs) != 1 {
			t.Fatalf("explicit=%v: %d images, want plot.png only", c.explicit, len(imgs))
		}
		img := imgs[0].(*mcp.ImageContent)
		if img.MIMEType != "image/png" || string(img.Data) != string(pngBytes) || out.Files[0].Content != "" || out.Files[0].MIMEType != "image/png" {
			t.Errorf("explicit=%v: image %+v, file %+v", c.explicit, img, out.Files[0])
		}
		if out.Files[1].MIMEType != "" || !out.Files[1].Truncated || out.Files[2].Content != "text" {
			t.Errorf("explicit=%v: a cut image or a text file: %+v", c.explicit, out.Files[1:3])
		}
	}
}

func TestDecodeContent(t *testing.T) {
	for _, c := range []struct {
		content, encoding, want string
		fails                   bool
	}{
		{"héllo", "", "héllo", false},
		{"héllo", "utf8", "héllo", false},
		{"aGk=", "base64", "hi", false},
		{"not base64!", "base64", "", true},
		{"x", "hex", "", true},
	} {
		got, err := decodeContent(c.content, c.encoding)
		if (err != nil) != c.fails || string(got) != c.want {
			t.Errorf("decodeContent(%q, %q) = %q, %v", c.content, c.encoding, got, err)
		}
	}
}

func TestToolError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&client.Error{HTTPStatus: 404, Code: "unknown_sandbox", Message: "no sandbox with this id"}, "unknown_sandbox: no sandbox with this id"},
		{errors.Join(errors.New("context"), &client.Error{Code: "busy", Message: "all slots are taken"}), "busy: all slots are taken"},
		{errors.New("sandboxd is not reachable: dial unix /x: connect: no such file"), "sandboxd is not reachable: dial unix /x: connect: no such file"},
	} {
		if got := toolError(c.err).Error(); got != c.want {
			t.Errorf("toolError(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
