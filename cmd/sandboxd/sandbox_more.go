package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandboxd/sandboxd/api"
)

// sandboxNetworkCommand is `sandboxd sandbox network`: PATCH's allow-list.
func sandboxNetworkCommand() *cli.Command {
	return &cli.Command{
		Name: "network", Usage: "change the hosts a sandbox may reach (--lock: none, after the installs)", ArgsUsage: "(--allow HOST... | --lock) ID",
		Flags: []cli.Flag{socketFlag,
			&cli.StringSliceFlag{Name: "allow", Usage: "a host the sandbox may reach from now on (repeatable)"},
			&cli.BoolFlag{Name: "lock", Usage: "no host at all, not even the package indexes; open connections are cut"},
		},
		Action: func(c *cli.Context) error {
			hosts := c.StringSlice("allow")
			if c.NArg() != 1 || c.Bool("lock") == (len(hosts) > 0) {
				return errors.New("usage: sandboxd sandbox network (--allow HOST... | --lock) ID")
			}
			sb, err := newClient(c).UpdateSandbox(c.Context, c.Args().First(), &api.UpdateSandboxRequest{Network: &api.Network{Allow: hosts}})
			if err != nil {
				return err
			}
			if sb.Network != nil {
				fmt.Printf("allow: [%s]\n", strings.Join(sb.Network.Allow, " "))
			}
			return nil
		},
	}
}

// sandboxDetach is `sandbox exec -d`: the exec's id, once it started.
func sandboxDetach(c *cli.Context, id string, req *api.SandboxExecRequest) (int, error) {
	if c.Bool("interactive") || req.TTY {
		return 0, errors.New("--detach excludes -i and -t: attach to a detached exec over its WebSocket")
	}
	x, err := newClient(c).Detach(c.Context, id, req)
	if err != nil {
		return 0, err
	}
	fmt.Println(x.ID)
	return 0, nil
}

func sandboxExecsCommand() *cli.Command {
	return &cli.Command{
		Name: "execs", Usage: "list a sandbox's detached execs", ArgsUsage: "ID", Flags: []cli.Flag{socketFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("usage: sandboxd sandbox execs ID")
			}
			list, err := newClient(c).Execs(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EXEC\tSTATE\tEXIT\tSTARTED\tCMD")
			for _, x := range list {
				exit := "-"
				if x.Result != nil {
					exit = fmt.Sprint(x.Result.ExitCode)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.ID, x.State, exit, x.StartedAt.Format(time.RFC3339), strings.Join(x.Cmd, " "))
			}
			return tw.Flush()
		},
	}
}

func sandboxKillCommand() *cli.Command {
	return &cli.Command{
		Name: "kill", Usage: "kill a detached exec", ArgsUsage: "ID EXEC_ID", Flags: []cli.Flag{socketFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return errors.New("usage: sandboxd sandbox kill ID EXEC_ID")
			}
			return newClient(c).KillExec(c.Context, c.Args().Get(0), c.Args().Get(1))
		},
	}
}
