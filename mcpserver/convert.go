package mcpserver

import (
	"encoding/base64"
	"errors"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandboxd/sandboxd/api"
)

// api returns the API's limits for l (nil: the defaults).
func (l *Limits) api() *api.Limits {
	if l == nil {
		return nil
	}
	return &api.Limits{WallTimeMS: l.WallTimeMS, CPUTimeMS: l.CPUTimeMS, MemoryBytes: l.MemoryBytes, OutputBytes: l.OutputBytes}
}

func apiFiles(in []FileInput) []api.File {
	out := make([]api.File, 0, len(in))
	for _, f := range in {
		out = append(out, api.File(f))
	}
	return out
}

// runResult is the tool's view of an API result: the collected images
// become image content, the other files stay in the result. A glob or
// path that matched nothing is dropped unless the caller named it
// (explicit): the default image globs usually match nothing.
func runResult(r *api.Result, explicit bool) (*RunResult, []mcp.Content) {
	out := &RunResult{Status: string(r.Status), ExitCode: r.ExitCode, Stdout: r.Stdout, Stderr: r.Stderr,
		StdoutEncoding: r.StdoutEncoding, StderrEncoding: r.StderrEncoding,
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
		WallTimeMS: r.WallTimeMS, CPUTimeMS: r.CPUTimeMS, MemoryPeakBytes: r.MemoryPeakBytes, Error: r.Error}
	if r.Signal != nil {
		out.Signal = *r.Signal
	}
	var images []mcp.Content
	for _, f := range r.Files {
		if f.Missing && !explicit {
			continue
		}
		fr, img := collected(f)
		out.Files = append(out.Files, fr)
		if img != nil {
			images = append(images, img)
		}
	}
	return out, images
}

// collected is one collected file, and its image content when it is a
// whole PNG, JPEG or SVG image.
func collected(f api.OutputFile) (FileResult, mcp.Content) {
	fr := FileResult{Name: f.Name, Size: f.Size, Truncated: f.Truncated, Type: f.Type}
	if f.Missing {
		fr.Type = "missing"
		return fr, nil
	}
	data := []byte(f.Content)
	if f.Encoding == "base64" {
		if d, err := base64.StdEncoding.DecodeString(f.Content); err == nil {
			data = d
		}
	}
	if mime := imageType(f.Name, data); mime != "" && !f.Truncated && f.Type == "" {
		fr.MIMEType = mime
		return fr, &mcp.ImageContent{Data: data, MIMEType: mime}
	}
	fr.Content, fr.Encoding = f.Content, f.Encoding
	return fr, nil
}

// imageType is the MIME type of an image a model can be shown: a .png or
// .jpg/.jpeg file whose bytes are one, or an .svg file of text. A file
// named like an image that is not one stays a file.
func imageType(name string, data []byte) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".png":
		return sniffed(data, "image/png")
	case ".jpg", ".jpeg":
		return sniffed(data, "image/jpeg")
	case ".svg":
		if utf8.Valid(data) && strings.Contains(string(data), "<svg") {
			return "image/svg+xml"
		}
	}
	return ""
}

func sniffed(data []byte, want string) string {
	if http.DetectContentType(data) == want {
		return want
	}
	return ""
}

// encodeContent gives text as it is, anything else as base64.
func encodeContent(data []byte) (content, encoding string) {
	if utf8.Valid(data) {
		return string(data), ""
	}
	return base64.StdEncoding.EncodeToString(data), "base64"
}

func decodeContent(content, encoding string) ([]byte, error) {
	switch encoding {
	case "", "utf8":
		return []byte(content), nil
	case "base64":
		data, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			return nil, errors.New("invalid_request: content is not valid base64")
		}
		return data, nil
	}
	return nil, errors.New("invalid_request: encoding must be utf8 or base64")
}

func fileEntry(e api.FileEntry) FileEntry {
	return FileEntry{Path: e.Path, Type: e.Type, Size: e.Size, Mode: e.Mode, ModTime: e.ModTime}
}
