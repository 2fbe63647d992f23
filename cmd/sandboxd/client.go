package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/runtime"
)

var socketFlag = &cli.StringFlag{Name: "socket", Value: client.DefaultSocket, Usage: "the daemon's Unix socket", EnvVars: []string{"SANDBOXD_SOCKET"}}

func newClient(c *cli.Context) *client.Client { return clientFor(c.String("socket")) } // client_token.go

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command in a sandbox through the daemon",
		ArgsUsage: "[FILE...] [-- CMD [ARGS...] | -- ARGS...]",
		Description: "With --image, FILEs are put in /work and CMD runs. With --language, the FILEs are\n" +
			"the program (the first is the main file) and ARGS are its arguments.\n" +
			"Standard input comes from --stdin FILE, or from sandboxd's own stdin when it is not a terminal.\n" +
			"With -i, stdin is sent while the program runs and its output shows as it comes; with -t it runs\n" +
			"on a terminal; -it gives an interactive terminal, like docker run -it.",
		UseShortOptionHandling: true,
		Flags: append(append([]cli.Flag{
			socketFlag,
			&cli.StringFlag{Name: "image", Usage: "image to run CMD in"},
			&cli.StringFlag{Name: "language", Aliases: []string{"l"}, Usage: "language of the FILEs (see sandboxd lang ls)"},
			&cli.StringFlag{Name: "version", Usage: "language version prefix (\"3\" selects 3.11.2)"},
			&cli.StringFlag{Name: "stdin", Usage: "file to feed to standard input"},
			&cli.BoolFlag{Name: "json", Usage: "print the daemon's response instead of the program's output"},
			&cli.StringSliceFlag{Name: "env", Usage: "K=V for the program (repeatable)"},
		}, interactiveFlags()...), limitCLIFlags()...),
		OnUsageError: oneLineUsageError,
		Action: func(c *cli.Context) error {
			code, err := runRemote(c)
			if err != nil {
				fmt.Fprintln(os.Stderr, "sandboxd run:", oneLine(err))
				os.Exit(exitSandboxFailed)
			}
			os.Exit(code)
			return nil
		},
	}
}

// splitArgs separates FILE... from CMD after "--", which urfave/cli drops.
func splitArgs(c *cli.Context) (files, cmd []string) {
	args := c.Args().Slice()
	if i := slices.Index(os.Args, "--"); i >= 0 {
		cmd = os.Args[i+1:]
		files = args[:max(len(args)-len(cmd), 0)]
		// With short-option handling (-it), urfave/cli keeps the "--".
		if n := len(files); n > 0 && files[n-1] == "--" {
			files = files[:n-1]
		}
		return files, cmd
	}
	return args, nil
}

func runRemote(c *cli.Context) (int, error) {
	files, cmd := splitArgs(c)
	req := &api.ExecuteRequest{Env: map[string]string{}}
	switch {
	case c.String("image") != "" && c.String("language") != "":
		return 0, errors.New("--image and --language exclude each other")
	case c.String("language") != "":
		if len(files) == 0 {
			return 0, errors.New("no source files given: use sandboxd run --language L MAIN [FILE...] [-- ARGS...]")
		}
		req.Language, req.Version, req.Args = c.String("language"), c.String("version"), cmd
	case c.String("image") != "":
		if len(cmd) == 0 {
			return 0, errors.New("no command given: use sandboxd run --image I [FILE...] -- CMD [ARGS...]")
		}
		req.Image, req.Cmd = c.String("image"), cmd
	default:
		return 0, errors.New("--image or --language is required")
	}
	for _, kv := range c.StringSlice("env") {
		k, v, ok := cutEnv(kv)
		if !ok {
			return 0, fmt.Errorf("--env %q: expected K=V", kv)
		}
		req.Env[k] = v
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		req.Files = append(req.Files, sourceFile(filepath.Base(f), data))
	}
	var err error
	if req.Stdin, err = requestStdin(c); err != nil {
		return 0, err
	}
	if req.TTY = c.Bool("tty"); req.TTY {
		req.Rows, req.Cols = localSize()
	}
	if c.Bool("interactive") && c.Bool("json") {
		return 0, errors.New("--json and --interactive exclude each other")
	}
	if req.Language != "" {
		if len(req.Env) > 0 {
			return 0, errors.New("--env is not available with --language")
		}
		req.Env = nil
		return runLanguage(c, req)
	}
	if req.Limits, err = limitFlags(c); err != nil {
		return 0, err
	}
	if c.Bool("interactive") {
		return runInteractively(c, req)
	}
	resp, err := newClient(c).Execute(c.Context, req)
	if err != nil {
		return 0, err
	}
	if c.Bool("json") {
		return resp.Run.ExitCode, json.NewEncoder(os.Stdout).Encode(resp)
	}
	writeStream(os.Stdout, resp.Run.Stdout, resp.Run.StdoutEncoding)
	writeStream(os.Stderr, resp.Run.Stderr, resp.Run.StderrEncoding)
	if resp.Status != runtime.StatusOK && resp.Status != runtime.StatusRuntimeError {
		fmt.Fprintf(os.Stderr, "sandboxd run: %s\n", describe(resp.Run))
	}
	if resp.Status == runtime.StatusInternalError {
		return exitSandboxFailed, nil
	}
	return resp.Run.ExitCode, nil
}

// requestStdin is the request's stdin: --stdin FILE, or sandboxd's own
// stdin when it is not a terminal; with -i, none (it is sent as it comes).
func requestStdin(c *cli.Context) (string, error) {
	if p := c.String("stdin"); p != "" {
		if c.Bool("interactive") {
			return "", errors.New("--stdin and --interactive exclude each other")
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("--stdin: %w", err)
		}
		return string(data), nil
	}
	if c.Bool("interactive") {
		return "", nil
	}
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return "", fmt.Errorf("reading stdin: %w", err)
		}
		return string(data), nil
	}
	return "", nil
}

// runInteractively runs req over the daemon's WebSocket (-i).
func runInteractively(c *cli.Context, req *api.ExecuteRequest) (int, error) {
	s, err := newClient(c).ExecuteInteractive(c.Context, req)
	if err != nil {
		return 0, err
	}
	return interactiveRun(c.Context, s, req.TTY, "sandboxd run")
}

// sourceFile sends text as text, so the request stays readable, and
// anything else as base64.
func sourceFile(name string, data []byte) api.File {
	if utf8.Valid(data) {
		return api.File{Name: name, Content: string(data)}
	}
	return api.File{Name: name, Content: base64.StdEncoding.EncodeToString(data), Encoding: "base64"}
}

func runLanguage(c *cli.Context, req *api.ExecuteRequest) (int, error) {
	limits, err := limitFlags(c)
	if err != nil {
		return 0, err
	}
	req.Limits = limits
	if c.Bool("interactive") {
		return runInteractively(c, req)
	}
	resp, err := newClient(c).ExecuteLanguage(c.Context, req)
	if err != nil {
		return 0, err
	}
	if c.Bool("json") {
		code := 0
		if resp.Run != nil {
			code = resp.Run.ExitCode
		}
		return code, json.NewEncoder(os.Stdout).Encode(resp)
	}
	if resp.Compile != nil && resp.Compile.Status != runtime.StatusOK {
		writeStream(os.Stderr, resp.Compile.Stdout, resp.Compile.StdoutEncoding)
		writeStream(os.Stderr, resp.Compile.Stderr, resp.Compile.StderrEncoding)
		fmt.Fprintf(os.Stderr, "sandboxd run: compile_error (%s)\n", resp.Compile.Status)
		return 1, nil
	}
	r := resp.Run
	writeStream(os.Stdout, r.Stdout, r.StdoutEncoding)
	writeStream(os.Stderr, r.Stderr, r.StderrEncoding)
	if r.Status != runtime.StatusOK && r.Status != runtime.StatusRuntimeError {
		fmt.Fprintf(os.Stderr, "sandboxd run: %s\n", describe(r))
	}
	if r.Status == runtime.StatusInternalError {
		return exitSandboxFailed, nil
	}
	return r.ExitCode, nil
}

func langCommand() *cli.Command {
	return &cli.Command{
		Name:  "lang",
		Usage: "the daemon's languages",
		Subcommands: []*cli.Command{{
			Name: "ls", Usage: "list languages with their versions", Flags: []cli.Flag{socketFlag},
			Action: func(c *cli.Context) error {
				list, err := newClient(c).Languages(c.Context)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tVERSION\tCOMPILED\tIMAGE\tALIASES")
				for _, l := range list {
					v := l.Version
					if !l.Available {
						v = "(image not available)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", l.Name, v, l.Compiled, l.Image, strings.Join(l.Aliases, ","))
				}
				return tw.Flush()
			},
		}},
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// drawProgress redraws one line: a 30-cell bar, the percentage and sizes.
func drawProgress(w io.Writer, ref string, done, total int64) {
	const cells = 30
	frac := 0.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	filled := int(frac * cells)
	fmt.Fprintf(w, "\r%s [%s%s] %3.0f%% %s / %s", ref, strings.Repeat("#", filled), strings.Repeat(".", cells-filled),
		frac*100, units.BytesSize(float64(done)), units.BytesSize(float64(total)))
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], i > 0
		}
	}
	return "", "", false
}

func writeStream(w io.Writer, text, encoding string) {
	if encoding == "base64" {
		data, err := base64.StdEncoding.DecodeString(text)
		if err == nil {
			_, _ = w.Write(data)
			return
		}
	}
	_, _ = io.WriteString(w, text)
}

// limitFlags reads the limit flags (the limits table's, as for exec)
// that were given; nil when none was.
func limitFlags(c *cli.Context) (*api.Limits, error) {
	p, err := limits.FromFlags(func(flag string) (string, bool) { return c.String(flag), c.IsSet(flag) })
	if err != nil {
		return nil, err
	}
	return p.API(), nil
}

// limitCLIFlags are the limits table's flags.
func limitCLIFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range limits.All() {
		out = append(out, &cli.StringFlag{Name: f.Flag, Usage: f.FlagUsage()})
	}
	return out
}

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "manage the daemon's images",
		Subcommands: []*cli.Command{
			{
				Name: "pull", Usage: "pull an image from a registry", ArgsUsage: "REF",
				Flags:  []cli.Flag{socketFlag, &cli.StringFlag{Name: "name", Usage: "store it under this name:tag"}},
				Action: imagePull,
			},
			{
				Name: "import", Usage: "import a docker-save/OCI archive or a rootfs tarball (- for stdin)", ArgsUsage: "FILE|-",
				Flags:  []cli.Flag{socketFlag, &cli.StringFlag{Name: "name", Required: true, Usage: "name:tag to store it as"}},
				Action: imageImport,
			},
			imageBuildCommand(),
			{
				Name: "ls", Usage: "list images with their disk usage", Flags: []cli.Flag{socketFlag},
				Action: imageList,
			},
			{
				Name: "rm", Usage: "remove an image", ArgsUsage: "NAME", Flags: []cli.Flag{socketFlag},
				Action: imageRemove,
			},
			{
				Name: "inspect", Usage: "show an image as JSON", ArgsUsage: "NAME", Flags: []cli.Flag{socketFlag},
				Action: imageInspect,
			},
		},
	}
}

// imagePull is `sandboxd image pull`: a progress bar on a terminal, one
// line otherwise.
func imagePull(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: sandboxd image pull REF [--name N]")
	}
	ref := c.Args().First()
	var img *api.Image
	var err error
	if isTerminal(os.Stderr) {
		img, err = newClient(c).PullProgress(c.Context, ref, c.String("name"), func(done, total int64) {
			drawProgress(os.Stderr, ref, done, total)
		})
		fmt.Fprintln(os.Stderr)
	} else {
		fmt.Fprintf(os.Stderr, "pulling %s ...\n", ref)
		img, err = newClient(c).Pull(c.Context, ref, c.String("name"))
	}
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", img.Name, img.ID, units.BytesSize(float64(img.SizeBytes)))
	return nil
}

// imageImport is `sandboxd image import`, from a file or stdin (-).
func imageImport(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: sandboxd image import FILE|- --name N")
	}
	var r io.Reader = os.Stdin
	if p := c.Args().First(); p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	img, err := newClient(c).Import(c.Context, r, c.String("name"))
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", img.Name, img.ID, units.BytesSize(float64(img.SizeBytes)))
	return nil
}

// imageList is `sandboxd image ls`: a table, IDs cut to 19 characters.
func imageList(c *cli.Context) error {
	list, err := newClient(c).Images(c.Context)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSIZE\tCREATED\tSOURCE")
	for _, img := range list {
		id := img.ID
		if len(id) > 19 {
			id = id[:19]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Name, id, units.BytesSize(float64(img.SizeBytes)),
			img.Created.Format(time.RFC3339), img.Source)
	}
	return tw.Flush()
}

// imageRemove is `sandboxd image rm`.
func imageRemove(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: sandboxd image rm NAME")
	}
	return newClient(c).RemoveImage(c.Context, c.Args().First())
}

// imageInspect is `sandboxd image inspect`: the image as indented JSON.
func imageInspect(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: sandboxd image inspect NAME")
	}
	img, err := newClient(c).Image(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(img)
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name: "status", Usage: "show the daemon's health and versions", Flags: []cli.Flag{socketFlag},
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
			defer cancel()
			cl := newClient(c)
			h, err := cl.Health(ctx)
			if err != nil {
				return err
			}
			v, err := cl.Version(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("status:        %s\nversion:       %s (api %s, %s, libcontainer %s, %s)\ncgroups:       %s, parent %s\nsandboxes:     %d running of %d, %d queued of %d\nimages:        %d\n",
				h.Status, v.Version, v.API, v.Go, v.Libcontainer, v.Libseccomp, h.Cgroup, h.CgroupParent,
				h.Running, h.Capacity, h.Queued, h.QueueLength, h.Images)
			return nil
		},
	}
}
