package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/dirtar"
	"github.com/sandboxd/sandboxd/runtime"
)

// sandboxCommand is `sandboxd sandbox`: session sandboxes, shaped like
// docker's container commands.
func sandboxCommand() *cli.Command {
	return &cli.Command{
		Name:  "sandbox",
		Usage: "manage sandboxes that live across calls (sessions)",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a sandbox and print its id",
				Flags: append([]cli.Flag{socketFlag,
					&cli.StringFlag{Name: "image", Usage: "image of the sandbox"},
					&cli.StringFlag{Name: "language", Aliases: []string{"l"}, Usage: "language whose image and environment to use"},
					&cli.StringFlag{Name: "version", Usage: "language version prefix"},
					&cli.DurationFlag{Name: "ttl", Usage: "the sandbox's maximum life (default: the daemon's session_ttl)"},
					&cli.DurationFlag{Name: "idle-timeout", Usage: "end it after this long without calls"},
					&cli.StringSliceFlag{Name: "env", Usage: "K=V for every exec (repeatable)"},
					&cli.StringSliceFlag{Name: "label", Usage: "K=V label (repeatable)"},
					&cli.StringSliceFlag{Name: "allow", Usage: "a host every exec may reach through the egress proxy (repeatable; `sandbox network` changes it)"},
				}, limitCLIFlags()...),
				OnUsageError: oneLineUsageError,
				Action:       sandboxCreate,
			},
			{Name: "ls", Usage: "list your sandboxes", Flags: []cli.Flag{socketFlag}, Action: sandboxList},
			{Name: "inspect", Usage: "show a sandbox and its usage as JSON", ArgsUsage: "ID", Flags: []cli.Flag{socketFlag}, Action: sandboxInspect},
			{Name: "rm", Usage: "end sandboxes", ArgsUsage: "ID...", Flags: []cli.Flag{socketFlag}, Action: sandboxRemove},
			{
				Name: "exec", Usage: "run a command in a sandbox; its output and exit code pass through (-it: an interactive terminal)", ArgsUsage: "ID -- CMD [ARGS...]",
				UseShortOptionHandling: true,
				Flags: append([]cli.Flag{socketFlag,
					&cli.StringFlag{Name: "cwd", Usage: "working directory under /work"},
					&cli.StringSliceFlag{Name: "env", Usage: "K=V (repeatable)"},
					&cli.StringFlag{Name: "stdin", Usage: "file to feed to standard input"},
					&cli.DurationFlag{Name: "wall-time", Usage: "wall-clock limit of this exec"},
					&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "start it in the background and print its exec id (see `sandbox execs`, `sandbox kill`)"},
				}, interactiveFlags()...),
				OnUsageError: oneLineUsageError,
				Action: func(c *cli.Context) error {
					code, err := sandboxExec(c)
					if err != nil {
						fmt.Fprintln(os.Stderr, "sandboxd sandbox exec:", oneLine(err))
						os.Exit(exitSandboxFailed)
					}
					os.Exit(code)
					return nil
				},
			},
			sandboxNetworkCommand(), sandboxExecsCommand(), sandboxKillCommand(), // sandbox_more.go
		},
	}
}

func keyValues(list []string, flag string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := cutEnv(kv)
		if !ok {
			return nil, fmt.Errorf("--%s %q: expected K=V", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func sandboxCreate(c *cli.Context) error {
	req := &api.CreateSandboxRequest{Image: c.String("image"), Language: c.String("language"), Version: c.String("version")}
	var err error
	if req.Env, err = keyValues(c.StringSlice("env"), "env"); err != nil {
		return err
	}
	if req.Labels, err = keyValues(c.StringSlice("label"), "label"); err != nil {
		return err
	}
	if c.IsSet("ttl") {
		ms := c.Duration("ttl").Milliseconds()
		req.TTLMS = &ms
	}
	if c.IsSet("idle-timeout") {
		ms := c.Duration("idle-timeout").Milliseconds()
		req.IdleTimeoutMS = &ms
	}
	if req.Limits, err = limitFlags(c); err != nil {
		return err
	}
	if hosts := c.StringSlice("allow"); len(hosts) > 0 {
		req.Network = &api.Network{Allow: hosts}
	}
	sb, err := newClient(c).CreateSandbox(c.Context, req)
	if err != nil {
		return err
	}
	fmt.Println(sb.ID)
	return nil
}

func sandboxList(c *cli.Context) error {
	list, err := newClient(c).Sandboxes(c.Context)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIMAGE\tCREATED\tEXPIRES\tLABELS")
	for _, sb := range list {
		var labels []string
		for k, v := range sb.Labels {
			labels = append(labels, k+"="+v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sb.ID, sb.Image, sb.CreatedAt.Format(time.RFC3339),
			sb.ExpiresAt.Format(time.RFC3339), strings.Join(labels, ","))
	}
	return tw.Flush()
}

func sandboxInspect(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: sandboxd sandbox inspect ID")
	}
	sb, err := newClient(c).Sandbox(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(sb)
}

// sandboxRemove ends every sandbox named, and reports each failure.
func sandboxRemove(c *cli.Context) error {
	if c.NArg() == 0 {
		return errors.New("usage: sandboxd sandbox rm ID...")
	}
	var errs []error
	for _, id := range c.Args().Slice() {
		if err := newClient(c).DeleteSandbox(c.Context, id); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func sandboxExec(c *cli.Context) (int, error) {
	ids, cmd := splitArgs(c)
	if len(ids) != 1 || len(cmd) == 0 {
		return 0, errors.New("usage: sandboxd sandbox exec ID -- CMD [ARGS...]")
	}
	req := &api.SandboxExecRequest{Cmd: cmd, Cwd: c.String("cwd")}
	var err error
	if req.Env, err = keyValues(c.StringSlice("env"), "env"); err != nil {
		return 0, err
	}
	if p := c.String("stdin"); p != "" {
		if c.Bool("interactive") {
			return 0, errors.New("--stdin and --interactive exclude each other")
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return 0, fmt.Errorf("--stdin: %w", err)
		}
		req.Stdin = string(data)
	}
	if c.IsSet("wall-time") {
		ms := c.Duration("wall-time").Milliseconds()
		req.Limits = &api.Limits{WallTimeMS: &ms}
	}
	if req.TTY = c.Bool("tty"); req.TTY {
		req.Rows, req.Cols = localSize()
	}
	if c.Bool("detach") {
		return sandboxDetach(c, ids[0], req)
	}
	if c.Bool("interactive") {
		s, err := newClient(c).ExecInteractive(c.Context, ids[0], req)
		if err != nil {
			return 0, err
		}
		return interactiveRun(c.Context, s, req.TTY, "sandboxd sandbox exec")
	}
	resp, err := newClient(c).Exec(c.Context, ids[0], req)
	if err != nil {
		return 0, err
	}
	writeStream(os.Stdout, resp.Run.Stdout, resp.Run.StdoutEncoding)
	writeStream(os.Stderr, resp.Run.Stderr, resp.Run.StderrEncoding)
	if resp.Status != runtime.StatusOK && resp.Status != runtime.StatusRuntimeError {
		fmt.Fprintf(os.Stderr, "sandboxd sandbox exec: %s\n", describe(resp.Run))
	}
	if resp.Status == runtime.StatusInternalError {
		return exitSandboxFailed, nil
	}
	return resp.Run.ExitCode, nil
}

// cpCommand is `sandboxd cp SRC DST`: one side is ID:PATH, the other a
// host path; directories travel as tar.
func cpCommand() *cli.Command {
	return &cli.Command{
		Name: "cp", Usage: "copy files between the host and a sandbox (ID:PATH on one side)", ArgsUsage: "SRC DST",
		Flags: []cli.Flag{socketFlag}, OnUsageError: oneLineUsageError,
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return errors.New("usage: sandboxd cp SRC DST, where SRC or DST is ID:PATH")
			}
			src, dst := c.Args().Get(0), c.Args().Get(1)
			sid, spath, sRemote := splitRemote(src)
			did, dpath, dRemote := splitRemote(dst)
			switch {
			case sRemote == dRemote:
				return errors.New("exactly one of SRC and DST must be ID:PATH")
			case dRemote:
				return copyIn(c, newClient(c), src, did, dpath)
			default:
				return copyOut(c, newClient(c), sid, spath, dst)
			}
		},
	}
}

// splitRemote reads ID:PATH; a host path with a colon needs a "./" prefix.
func splitRemote(arg string) (id, path string, ok bool) {
	id, path, ok = strings.Cut(arg, ":")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", arg, false
	}
	return id, path, true
}

func copyIn(c *cli.Context, cl *client.Client, src, id, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if st.IsDir() {
		tr := dirtar.Stream(src)
		defer tr.Close()
		_, err := cl.PutArchive(c.Context, id, dst, tr)
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = cl.WriteFile(c.Context, id, dst, f, uint32(st.Mode().Perm()))
	return err
}

// copyOut writes a sandbox file to dst, or unpacks a directory into dst.
func copyOut(c *cli.Context, cl *client.Client, id, src, dst string) error {
	data, err := cl.ReadFile(c.Context, id, src)
	if err == nil {
		if st, serr := os.Stat(dst); serr == nil && st.IsDir() {
			dst = filepath.Join(dst, filepath.Base(src))
		}
		return os.WriteFile(dst, data, 0o644)
	}
	if !client.IsCode(err, api.CodeInvalidRequest) {
		return err
	}
	// A directory: GET on it lists it, so fetch it as a tar instead.
	tr, err := cl.GetArchive(c.Context, id, src)
	if err != nil {
		return err
	}
	defer tr.Close()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	skipped, err := dirtar.Extract(tr, dst)
	if skipped > 0 {
		fmt.Fprintf(os.Stderr, "sandboxd cp: %d links or special files not copied\n", skipped)
	}
	return err
}
