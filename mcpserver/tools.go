package mcpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
)

// tools are the MCP tools over one client.
type tools struct {
	c *client.Client
}

// defaultCollect is what run_code reads back when its call names nothing:
// the images a program leaves at the top of /work (a plot saved as
// plot.png).
var defaultCollect = []string{"*.png", "*.jpg", "*.jpeg", "*.svg"}

// maxRead bounds read_file: a model's context is not the place for more.
const maxRead = 1 << 20

func (t tools) runCode(ctx context.Context, in RunCodeInput) (RunCodeOutput, []mcp.Content, error) {
	name := in.Filename
	if name == "" {
		var err error
		if name, err = t.mainFile(ctx, in.Language); err != nil {
			return RunCodeOutput{}, nil, err
		}
	}
	req := &api.ExecuteRequest{Language: in.Language, Version: in.Version, Stdin: in.Stdin, Args: in.Args,
		Files:  append([]api.File{{Name: name, Content: in.Code}}, apiFiles(in.Files)...),
		Limits: in.Limits.api(), Collect: in.Collect}
	explicit := len(in.Collect) > 0
	if !explicit {
		req.Collect = defaultCollect
	}
	resp, err := t.c.ExecuteLanguage(ctx, req)
	if err != nil {
		return RunCodeOutput{}, nil, err
	}
	out := RunCodeOutput{Language: resp.Language, Version: resp.Version, Status: resp.Status}
	if resp.Compile != nil && resp.Compile.Result != nil && resp.Compile.Status != api.StatusOK {
		out.Compile, _ = runResult(resp.Compile.Result, false)
	}
	var images []mcp.Content
	if resp.Run != nil {
		out.Run, images = runResult(resp.Run, explicit)
	}
	return out, images, nil
}

// mainFile is the conventional main file name of language (a name or an
// alias). For a language the daemon does not know it is "main", so that
// the API's unknown_language answer, which lists the languages, is the
// one the model reads.
func (t tools) mainFile(ctx context.Context, language string) (string, error) {
	list, err := t.c.Languages(ctx)
	if err != nil {
		return "", err
	}
	for _, l := range list {
		if strings.EqualFold(l.Name, language) || containsFold(l.Aliases, language) {
			return l.Main, nil
		}
	}
	return "main", nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (t tools) listLanguages(ctx context.Context, _ NoInput) (ListLanguagesOutput, []mcp.Content, error) {
	list, err := t.c.Languages(ctx)
	if err != nil {
		return ListLanguagesOutput{}, nil, err
	}
	out := ListLanguagesOutput{Languages: []Language{}}
	for _, l := range list {
		aliases := l.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		out.Languages = append(out.Languages, Language{Name: l.Name, Aliases: aliases, Version: l.Version,
			Compiled: l.Compiled, Main: l.Main, Available: l.Available})
	}
	return out, nil, nil
}

func (t tools) createSandbox(ctx context.Context, in CreateSandboxInput) (SandboxOutput, []mcp.Content, error) {
	sb, err := t.c.CreateSandbox(ctx, &api.CreateSandboxRequest{Language: in.Language, Image: in.Image,
		Version: in.Version, Files: apiFiles(in.Files), Env: in.Env, TTLMS: in.TTLMS, IdleTimeoutMS: in.IdleTimeoutMS})
	if err != nil {
		return SandboxOutput{}, nil, err
	}
	return SandboxOutput{SandboxID: sb.ID, Image: sb.Image, Language: sb.Language, Version: sb.Version,
		ExpiresAt: sb.ExpiresAt, IdleTimeoutMS: sb.IdleTimeoutMS}, nil, nil
}

func (t tools) exec(ctx context.Context, in ExecInput) (RunResult, []mcp.Content, error) {
	cmd := in.Cmd
	switch {
	case in.Command != "" && len(in.Cmd) > 0:
		return RunResult{}, nil, errors.New("invalid_request: give command or cmd, not both")
	case in.Command != "":
		cmd = []string{"/bin/sh", "-c", in.Command}
	case len(cmd) == 0:
		return RunResult{}, nil, errors.New("invalid_request: give command (a shell line) or cmd (an argument list)")
	}
	resp, err := t.c.Exec(ctx, in.SandboxID, &api.SandboxExecRequest{Cmd: cmd, Stdin: in.Stdin, Cwd: in.Cwd,
		Env: in.Env, Limits: in.Limits.api()})
	if err != nil {
		return RunResult{}, nil, err
	}
	out, _ := runResult(resp.Run, false)
	return *out, nil, nil
}

func (t tools) writeFile(ctx context.Context, in WriteFileInput) (FileEntry, []mcp.Content, error) {
	data, err := decodeContent(in.Content, in.Encoding)
	if err != nil {
		return FileEntry{}, nil, err
	}
	var mode uint64
	if in.Mode != "" {
		if mode, err = strconv.ParseUint(in.Mode, 8, 32); err != nil {
			return FileEntry{}, nil, fmt.Errorf("invalid_request: mode %q: expected octal permission bits such as 0644", in.Mode)
		}
	}
	e, err := t.c.WriteFile(ctx, in.SandboxID, in.Path, bytes.NewReader(data), uint32(mode))
	if err != nil {
		return FileEntry{}, nil, err
	}
	return fileEntry(*e), nil, nil
}

func (t tools) readFile(ctx context.Context, in ReadFileInput) (ReadFileOutput, []mcp.Content, error) {
	limit := int64(maxRead)
	if in.MaxBytes > 0 && in.MaxBytes < limit {
		limit = in.MaxBytes
	}
	body, err := t.c.OpenFile(ctx, in.SandboxID, in.Path)
	if err != nil {
		return ReadFileOutput{}, nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return ReadFileOutput{}, nil, fmt.Errorf("reading %s: %w", in.Path, err)
	}
	out := ReadFileOutput{Path: in.Path}
	if int64(len(data)) > limit {
		data, out.Truncated = data[:limit], true
	}
	out.Size = int64(len(data))
	if mime := imageType(in.Path, data); mime != "" && !out.Truncated {
		out.MIMEType = mime
		return out, []mcp.Content{&mcp.ImageContent{Data: data, MIMEType: mime}}, nil
	}
	out.Content, out.Encoding = encodeContent(data)
	return out, nil, nil
}

func (t tools) listFiles(ctx context.Context, in ListFilesInput) (ListFilesOutput, []mcp.Content, error) {
	list, err := t.c.ListFiles(ctx, in.SandboxID, in.Path, in.Recursive)
	if err != nil {
		return ListFilesOutput{}, nil, err
	}
	out := ListFilesOutput{Path: list.Path, Entries: []FileEntry{}}
	for _, e := range list.Entries {
		out.Entries = append(out.Entries, fileEntry(e))
	}
	return out, nil, nil
}

func (t tools) deleteSandbox(ctx context.Context, in SandboxIDInput) (DeleteSandboxOutput, []mcp.Content, error) {
	if err := t.c.DeleteSandbox(ctx, in.SandboxID); err != nil {
		return DeleteSandboxOutput{}, nil, err
	}
	return DeleteSandboxOutput{SandboxID: in.SandboxID, Deleted: true}, nil, nil
}
