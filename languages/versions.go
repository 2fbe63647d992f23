package languages

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/images"
)

// imageFor returns the language's image, pulling it first when it is an
// OCI reference that is not in the store yet.
func (s *Service) imageFor(ctx context.Context, l *Language) (*images.Image, error) {
	img, err := s.Images.Get(l.Image)
	if err == nil || !errors.Is(err, images.ErrNotFound) || !isRegistryRef(l.Image) {
		return img, err
	}
	return s.Images.Pull(ctx, l.Image, l.Image, nil)
}

// isRegistryRef tells an OCI reference ("mcr.microsoft.com/dotnet/sdk:8.0")
// from a local image name ("lang/python:3"): its first path element names a
// registry host.
func isRegistryRef(ref string) bool {
	first, _, found := strings.Cut(ref, "/")
	return found && (strings.ContainsAny(first, ".:") || first == "localhost")
}

// version returns the toolchain version of l's image, running its version
// command once per image content, in key's fairness line. The run is no
// request's own: it has no observer.
func (s *Service) version(ctx context.Context, key string, l *Language) (string, *images.Image, error) {
	img, err := s.imageFor(ctx, l)
	if err != nil {
		return "", nil, err
	}
	id := l.Name + "\x00" + img.ID
	s.mu.Lock()
	v, ok := s.versions[id]
	s.mu.Unlock()
	if ok || len(l.VersionCmd) == 0 {
		return v, img, nil
	}
	out, err := s.Stages.Run(ctx, key, execution.Stage{Image: l.Image, Args: l.VersionCmd, Env: l.Env,
		Limits: versionLimits().Over(s.Defaults).Capped(s.Maximums)}, nil)
	if err != nil {
		return "", nil, fmt.Errorf("reading the version of %s: %w", l.Name, err)
	}
	v = l.ParseVersion(out.Result.Stdout + "\n" + out.Result.Stderr)
	if out.Result.Status != api.StatusOK || v == "" {
		// Not remembered: the next request tries again.
		return "", nil, fmt.Errorf("reading the version of %s: %s %v gave status %s and %q", l.Name, l.Image, l.VersionCmd,
			out.Result.Status, strings.TrimSpace(out.Result.Stdout+" "+out.Result.Stderr))
	}
	s.mu.Lock()
	if s.versions == nil {
		s.versions = map[string]string{}
	}
	s.versions[id] = v
	s.mu.Unlock()
	return v, img, nil
}

// List describes every catalog language for GET /v1/languages.
func (s *Service) List(ctx context.Context) []api.LanguageInfo {
	out := []api.LanguageInfo{}
	if s.Catalog == nil {
		return out
	}
	for _, l := range s.Catalog.Languages {
		aliases := l.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		info := api.LanguageInfo{Name: l.Name, Aliases: aliases, Image: l.Image, Main: l.Main, Compiled: l.Compiled()}
		if v, _, err := s.version(ctx, "", l); err == nil {
			info.Version, info.Available = v, true
		} else if !errors.Is(err, images.ErrNotFound) && !errors.Is(err, images.ErrUnavailable) {
			s.log().Warn("language version", "language", l.Name, "err", err)
		}
		out = append(out, info)
	}
	return out
}
