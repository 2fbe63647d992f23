package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
)

func imageBuildCommand() *cli.Command {
	return &cli.Command{
		Name: "build", Usage: "build an image from a recipe: commands run over an image, kept as a new one",
		Description: "A recipe file (-f) is TOML with the fields of POST /v1/images/build; the flags add to it or\n" +
			"replace it: --run CMD runs `sh -c CMD`, --allow HOST lets the steps reach HOST through the egress proxy.",
		Flags: []cli.Flag{socketFlag,
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "recipe file (TOML)"},
			&cli.StringFlag{Name: "name", Usage: "name:tag of the new image"},
			&cli.StringFlag{Name: "from", Usage: "the image to start from"},
			&cli.StringSliceFlag{Name: "run", Usage: "a step, run with sh -c (repeatable, in order)"},
			&cli.StringSliceFlag{Name: "env", Usage: "K=V for the steps and the new image (repeatable)"},
			&cli.StringSliceFlag{Name: "allow", Usage: "a host the steps may reach (repeatable)"},
		},
		Action: imageBuild,
	}
}

// imageBuild is `sandboxd image build`: the steps' output as it comes,
// then the new image's name and id.
func imageBuild(c *cli.Context) error {
	req, err := buildRequest(c)
	if err != nil {
		return err
	}
	img, err := newClient(c).BuildImage(c.Context, req, func(ev *client.BuildEvent) {
		switch ev.Type {
		case "step":
			fmt.Fprintf(os.Stderr, "step %d/%d: %s\n", ev.Step, len(req.Run), strings.Join(ev.Cmd, " "))
		case "stdout":
			writeStream(os.Stdout, ev.Data, ev.Encoding)
		case "stderr":
			writeStream(os.Stderr, ev.Data, ev.Encoding)
		}
	})
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", img.Name, img.ID)
	return nil
}

// buildRequest is the recipe file with the flags laid over it.
func buildRequest(c *cli.Context) (*api.BuildRequest, error) {
	req := &api.BuildRequest{}
	if f := c.String("file"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if req, err = client.ParseRecipe(data); err != nil {
			return nil, err
		}
	}
	if v := c.String("name"); v != "" {
		req.Name = v
	}
	if v := c.String("from"); v != "" {
		req.From = v
	}
	for _, s := range c.StringSlice("run") {
		req.Run = append(req.Run, []string{"sh", "-c", s})
	}
	for _, kv := range c.StringSlice("env") {
		k, v, ok := cutEnv(kv)
		if !ok {
			return nil, fmt.Errorf("--env %q: expected K=V", kv)
		}
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		req.Env[k] = v
	}
	if hosts := c.StringSlice("allow"); len(hosts) > 0 {
		req.Network = &api.Network{Allow: hosts}
	}
	if req.Name == "" || req.From == "" || len(req.Run) == 0 {
		return nil, errors.New("usage: sandboxd image build [-f RECIPE] [--name N] [--from IMAGE] [--run CMD]... (a name, a from and a step are needed)")
	}
	return req, nil
}
