package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/rootfs"
)

// Workspace is what outlives any one sandbox of a session: its /work and
// /tmp (a scratch) and its slot of host ids, so that every file keeps one
// owner from exec to exec. Sandboxes built with BuildOptions.Workspace run
// over it and leave it in place when they are destroyed; Remove ends it.
//
// Its sandboxes' cgroups nest in a cgroup of its own, limited to the
// workspace's memory, CPU and pids (cgroup.Group): however many of them
// run at once, together they get no more than one sandbox would.
//
// It is held like a sandbox: a lock on locks/<id> from before its scratch
// exists until the scratch is gone, so that Recover and ReapDead remove a
// dead owner's workspace exactly as they remove its sandboxes (its cgroup
// with them: it bears the sandboxes' prefix).
type Workspace struct {
	id               string
	engine           *Engine
	scratch          *rootfs.Scratch
	ids              *idSlot
	hostUID, hostGID int
	lock             *os.File
	group            *cgroup.Group
	// pids is the workspace's own pids limit; the group's is pids plus
	// what its live sandboxes keep inside (holdPids).
	pids int64
	mu   sync.Mutex
	held int64 // guarded by mu
	// net is the network namespace all its sandboxes share (sessionnet.go).
	net *sessionNet
	// layer, for an image build's workspace, is the writable layer its
	// sandboxes' roots share (rootfs.Layer); image is what it lies over.
	layer *rootfs.Layer
	image string
}

// WorkspaceOptions describe a workspace.
type WorkspaceOptions struct {
	UID, GID int // the sandbox user
	// Limits bound all its sandboxes together (memory, CPU, pids) and
	// size its /work and /tmp.
	Limits Limits
	// Layer, when set, makes it an image build's workspace: its
	// sandboxes' roots are writable, one at a time, over Layer.Image.
	Layer *LayerOptions
}

// LayerOptions describe a build's writable layer.
type LayerOptions struct {
	// Image is the root the layer lies over: every sandbox of the
	// workspace must be built with it as its Rootfs.
	Image string
	// Bytes bounds what the layer may hold.
	Bytes int64
}

// NewWorkspace creates a workspace. On error nothing is left.
func (e *Engine) NewWorkspace(o WorkspaceOptions) (_ *Workspace, err error) {
	uid, gid := o.UID, o.GID
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	if uid <= 0 || gid <= 0 {
		return nil, invalidf("the sandbox user must not be root (uid %d, gid %d)", uid, gid)
	}
	w := &Workspace{id: newID(), engine: e, hostUID: uid, hostGID: gid, pids: o.Limits.Pids}
	if w.lock, err = newLock(filepath.Join(e.runDir, "locks"), w.id); err != nil {
		return nil, fmt.Errorf("workspace lock: %w", err)
	}
	defer func() {
		if err != nil {
			_ = w.Remove()
		}
	}()
	if e.userns {
		if uid >= IDsPerSandbox || gid >= IDsPerSandbox {
			return nil, invalidf("uid and gid must be below %d inside a user namespace", IDsPerSandbox)
		}
		if w.ids, err = e.allocSlot(); err != nil {
			return nil, err
		}
		w.hostUID, w.hostGID = int(w.ids.base)+uid, int(w.ids.base)+gid
	}
	w.scratch, err = rootfs.NewScratch(filepath.Join(e.runDir, "scratch", w.id), w.hostUID, w.hostGID, scratchSizes(o.Limits))
	if err != nil {
		return nil, err
	}
	if w.group, err = e.parent.NewGroup(w.id, cgroupLimits(o.Limits)); err != nil {
		return nil, err
	}
	if w.net, err = newSessionNet(e.netnsPath(w.id)); err != nil {
		return nil, err
	}
	if o.Layer != nil {
		w.image = o.Layer.Image
		if w.layer, err = rootfs.NewLayer(e.layerPath(w.id), o.Layer.Image, o.Layer.Bytes, w.hostUID, w.hostGID); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// holdPids makes room in the group's pids limit for the tasks a sandbox of
// the workspace keeps inside, beyond its programs' (tasks > 0, as one is
// built), or takes it back (tasks < 0, once one is gone): the programs of
// all its sandboxes then get exactly the workspace's pids, however many
// sandboxes hold an entry (and a reusable one a prepared run) at the time.
func (w *Workspace) holdPids(tasks int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.group.SetPids(w.pids + w.held + tasks); err != nil {
		return err
	}
	w.held += tasks
	return nil
}

// layerPath is where a build workspace's layer is mounted.
func (e *Engine) layerPath(id string) string { return filepath.Join(e.runDir, "layers", id) }

// LayerDir is the upper directory of a build workspace's layer (what its
// steps changed); "" for any other workspace. Read it only while no
// sandbox of the workspace runs.
func (w *Workspace) LayerDir() string {
	if w.layer == nil {
		return ""
	}
	return w.layer.Upper()
}

// cgroupParent is where the workspace's sandboxes' cgroups nest.
func (w *Workspace) cgroupParent() cgroup.Parent { return w.group.Parent() }

// ID names the workspace (its scratch directory and lock carry it).
func (w *Workspace) ID() string { return w.id }

// Scratch is the workspace's /work and /tmp, for the files API.
func (w *Workspace) Scratch() *rootfs.Scratch { return w.scratch }

// Remove unmounts and deletes the scratch and frees the id slot. Call it
// only once no sandbox of the workspace runs: a process still running
// under the slot's ids must not share them with the next owner.
func (w *Workspace) Remove() error {
	var err error
	if w.scratch != nil {
		err = w.scratch.Remove()
	}
	if w.net != nil {
		err = errors.Join(err, w.net.close())
	}
	if w.layer != nil {
		err = errors.Join(err, w.layer.Remove())
	}
	if w.group != nil {
		err = errors.Join(err, w.group.Remove())
	}
	w.ids.release()
	if w.lock != nil {
		if err == nil {
			os.Remove(filepath.Join(w.engine.runDir, "locks", w.id))
		}
		w.lock.Close() // on error the file stays: the next start reaps it
	}
	return err
}
