// Command sandboxd-image builds sandboxd's OCI images without Docker
// (package ociimage) and prints the outer container's seccomp profile
// (package deploy/docker). The Makefile runs it: make image, make
// images-oci, make image-push.
//
//	sandboxd-image self -binary B -rootfs DIR -catalog F -config F -entrypoint F [-tag T] [-layout DIR] [-tarball FILE]
//	scripts/build-images.sh --list | sandboxd-image languages [-layout DIR] [-tarball FILE]
//	sandboxd-image push -layout DIR -registry HOST[:PORT][/PATH]
//	sandboxd-image seccomp
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/deploy/docker"
	"github.com/sandboxd/sandboxd/ociimage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd-image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: sandboxd-image self|languages|push|seccomp [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	layoutDir := fs.String("layout", "", "write an OCI layout to this directory")
	tarPath := fs.String("tarball", "", "write a `docker load`-able tarball to this file")
	switch args[0] {
	case "self":
		var o ociimage.SelfOptions
		fs.StringVar(&o.Binary, "binary", "bin/sandboxd", "the static sandboxd binary")
		fs.StringVar(&o.Rootfs, "rootfs", ".cache/rootfs/busybox", "the busybox rootfs directory")
		fs.StringVar(&o.Catalog, "catalog", "languages/catalog.toml", "the language catalog")
		fs.StringVar(&o.Config, "config", "deploy/docker/sandboxd.toml", "the default configuration")
		fs.StringVar(&o.Entrypoint, "entrypoint", "deploy/docker/entrypoint.sh", "the entrypoint script")
		tag := fs.String("tag", "sandboxd:dev", "the image's name")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.Version, o.Created = strings.SplitN(*tag+":", ":", 3)[1], time.Now().UTC().Truncate(time.Second)
		img, err := ociimage.Self(o)
		if err != nil {
			return err
		}
		return write([]ociimage.Named{{Ref: *tag, Image: img}}, *layoutDir, *tarPath)
	case "languages":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		imgs, err := languages(os.Stdin)
		if err != nil {
			return err
		}
		return write(imgs, *layoutDir, *tarPath)
	case "push":
		registry := fs.String("registry", "", "host[:port][/path] to push to")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pushed, err := ociimage.Push(ctx, *layoutDir, *registry)
		for _, p := range pushed {
			fmt.Println(p)
		}
		return err
	case "seccomp":
		out, err := docker.OuterSeccomp()
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// languages reads scripts/build-images.sh --list ("recipe key image
// rootfs" per line) and builds an image per line, named as the store names it.
func languages(list io.Reader) ([]ociimage.Named, error) {
	var imgs []ociimage.Named
	created := time.Now().UTC().Truncate(time.Second)
	sc := bufio.NewScanner(list)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			return nil, fmt.Errorf("languages: want \"recipe key image rootfs\", got %q", sc.Text())
		}
		img, err := ociimage.Language(f[3], f[2], created)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, ociimage.Named{Ref: f[2], Image: img})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(imgs) == 0 {
		return nil, errors.New("languages: no image listed (run make images)")
	}
	return imgs, nil
}

func write(imgs []ociimage.Named, layoutDir, tarPath string) error {
	if layoutDir == "" && tarPath == "" {
		return errors.New("give -layout, -tarball or both")
	}
	if layoutDir != "" {
		if err := ociimage.WriteLayout(layoutDir, imgs); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", layoutDir)
	}
	if tarPath != "" {
		if err := ociimage.WriteTarball(tarPath, imgs); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", tarPath)
	}
	return nil
}
