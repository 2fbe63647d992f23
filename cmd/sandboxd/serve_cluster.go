package main

import "github.com/sandboxd/sandboxd/config"

// clusterFlags are the [cluster] keys a pod sets for itself; the rest of
// [cluster] is the same on every pod, in the config file.
func clusterFlags() []configFlag {
	return []configFlag{
		{"pod-name", "this daemon's name among its peers, ending its session ids (Kubernetes: the pod's name)",
			str(func(c *config.Config) *string { return &c.Cluster.PodName })},
	}
}

// flagSections are the config sections of flags whose keys are not at
// the top level.
var flagSections = map[string]string{"pod-name": "[cluster] "}
