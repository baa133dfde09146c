// Package funczip makes the deployable zip of a function: the function's folder, with the
// workspace modules it replaces by relative path copied in and its dependencies vendored, so
// that the folder builds alone, as Cloud Functions builds it (no go.work, no network needed).
package funczip

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// DepsDir is the folder inside the package that holds copies of locally replaced modules.
// The leading underscore keeps it out of `./...` patterns.
const DepsDir = "_deps"

// FrameworkPackage must be vendored: Cloud Functions builds a vendored function offline and
// links this package into the main it generates.
const FrameworkPackage = "github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

// Result says what staging had to do.
type Result struct {
	// Tidied is true when the function's go.mod or go.sum lacked a requirement or checksum
	// that a build without the workspace needs (typically after shared/ gained a dependency);
	// the package has it. Requirements dropped because only tests used them do not count.
	Tidied bool
}

// Build writes the package of the function in fnDir to zipPath.
func Build(ctx context.Context, fnDir, zipPath string) (Result, error) {
	name := filepath.Base(fnDir)
	tmp, err := os.MkdirTemp("", "funczip-"+name+"-")
	if err != nil {
		return Result{}, fmt.Errorf("funczip: %w", err)
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, name)
	res, err := Stage(ctx, fnDir, work)
	if err != nil {
		return res, err
	}
	return res, Zip(work, zipPath)
}

// Stage copies the function in fnDir to work and makes it self-contained: every replace by
// relative path is copied under DepsDir and pointed there, then, with the workspace switched
// off, `go mod tidy` completes the requirements against the copied modules and
// `go mod vendor` fills vendor/.
//
// Cloud Functions never runs tests, so neither the function nor the copied modules bring
// their _test.go files or testdata folders: what only tests import (the emulators, the dev
// token issuer, test-support packages) is then neither required nor vendored, and a
// replaced module the function's code does not import is left out altogether.
func Stage(ctx context.Context, fnDir, work string) (Result, error) {
	var res Result
	if err := copyTree(fnDir, work); err != nil {
		return res, err
	}
	mod, err := readGoMod(ctx, work)
	if err != nil {
		return res, err
	}
	before, err := modLines(work, mod)
	if err != nil {
		return res, err
	}
	type local struct{ old, dir string }
	var locals []local
	used := map[string]bool{}
	for _, r := range mod.Replace {
		if !localPath(r.New.Path) {
			continue
		}
		src := filepath.Join(fnDir, filepath.FromSlash(r.New.Path))
		dst := uniqueName(path.Base(r.Old.Path), used)
		if err := copyTree(src, filepath.Join(work, DepsDir, dst)); err != nil {
			return res, err
		}
		old := r.Old.Path
		if r.Old.Version != "" {
			old += "@" + r.Old.Version
		}
		if err := goCmd(ctx, work, "mod", "edit", "-replace="+old+"=./"+DepsDir+"/"+dst); err != nil {
			return res, err
		}
		locals = append(locals, local{old, dst})
	}
	// In the workspace a function builds against go.work's combined requirements; alone it
	// has only its own go.mod, which lags whenever a replaced module gains a dependency, and
	// which also lists what only its tests need.
	if err := goCmd(ctx, work, "mod", "tidy"); err != nil {
		return res, err
	}
	tidied, err := readGoMod(ctx, work)
	if err != nil {
		return res, err
	}
	required := map[string]bool{}
	for _, r := range tidied.Require {
		required[r.Path] = true
	}
	var dropped bool
	for _, l := range locals {
		if required[strings.SplitN(l.old, "@", 2)[0]] {
			continue
		}
		if err := goCmd(ctx, work, "mod", "edit", "-dropreplace="+l.old); err != nil {
			return res, err
		}
		if err := os.RemoveAll(filepath.Join(work, DepsDir, l.dir)); err != nil {
			return res, fmt.Errorf("funczip: %w", err)
		}
		dropped = true
	}
	if dropped {
		if err := goCmd(ctx, work, "mod", "tidy"); err != nil {
			return res, err
		}
	}
	after, err := modLines(work, nil)
	if err != nil {
		return res, err
	}
	for l := range after {
		if !before[l] {
			res.Tidied = true
			break
		}
	}
	if err := goCmd(ctx, work, "mod", "vendor"); err != nil {
		return res, err
	}
	txt, err := os.ReadFile(filepath.Join(work, "vendor", "modules.txt"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("funczip: %w", err)
	}
	if !bytes.Contains(append([]byte("\n"), txt...), []byte("\n"+FrameworkPackage+"\n")) {
		return res, fmt.Errorf("funczip: %s: %s is not vendored; Cloud Functions needs it in vendor/ (import it from cmd/main.go)", filepath.Base(fnDir), FrameworkPackage)
	}
	return res, nil
}

// modLines is what a module asks for, one string per requirement ("path version") and per
// go.sum line, so that what tidy added can be told from what it removed. mod is the parsed
// go.mod, or nil to read it from dir.
func modLines(dir string, mod *goMod) (map[string]bool, error) {
	if mod == nil {
		var err error
		if mod, err = readGoMod(context.Background(), dir); err != nil {
			return nil, err
		}
	}
	lines := map[string]bool{}
	for _, r := range mod.Require {
		lines[r.Path+" "+r.Version] = true
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("funczip: %w", err)
	}
	for _, l := range strings.Split(string(sum), "\n") {
		if l != "" {
			lines["sum "+l] = true
		}
	}
	return lines, nil
}

type goMod struct {
	Module  struct{ Path string }
	Require []struct{ Path, Version string }
	Replace []struct {
		Old, New struct{ Path, Version string }
	}
}

func readGoMod(ctx context.Context, dir string) (*goMod, error) {
	out, err := goOutput(ctx, dir, "mod", "edit", "-json")
	if err != nil {
		return nil, err
	}
	var m goMod
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("funczip: go mod edit -json: %w", err)
	}
	return &m, nil
}

// localPath reports whether a replacement is a directory (the go.mod rule: it starts with
// ./ or ../ or is absolute).
func localPath(p string) bool {
	return strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || filepath.IsAbs(p)
}

func uniqueName(base string, used map[string]bool) string {
	n := base
	for i := 2; used[n]; i++ {
		n = fmt.Sprintf("%s%d", base, i)
	}
	used[n] = true
	return n
}

// goEnv is the environment of go commands on a package: no workspace, whatever the caller has.
func goEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOWORK=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOWORK=off")
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	_, err := goOutput(ctx, dir, args...)
	return err
}

func goOutput(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = goEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("funczip: go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return out, nil
}

// skip says which entries never belong in a package: version control, an old vendor folder
// (rebuilt from go.mod), tests and their data (Cloud Functions never runs them, and go build
// ignores both), test binaries and profiles.
func skip(rel string, d fs.DirEntry) bool {
	base := d.Name()
	if d.IsDir() {
		return base == ".git" || base == "testdata" || rel == "vendor"
	}
	return strings.HasSuffix(base, "_test.go") || strings.HasSuffix(base, ".test") || strings.HasSuffix(base, ".prof")
}

// copyTree copies the regular files of src to dst, keeping modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("funczip: copy %s: %w", src, err)
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && skip(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("funczip: %w", err)
		}
		return copyFile(p, target, info.Mode().Perm())
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("funczip: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("funczip: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("funczip: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("funczip: %w", err)
	}
	return nil
}

// Zip writes the files under dir to zipPath with paths relative to dir: the zip's root is the
// function's folder, as a source upload expects. It replaces zipPath only when complete.
func Zip(dir, zipPath string) error {
	if err := os.MkdirAll(filepath.Dir(zipPath), 0o755); err != nil {
		return fmt.Errorf("funczip: %w", err)
	}
	tmp := zipPath + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("funczip: %w", err)
	}
	defer os.Remove(tmp)
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		h.Name, h.Method = filepath.ToSlash(rel), zip.Deflate
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(w, in)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("funczip: zip %s: %w", dir, err)
	}
	if err := os.Rename(tmp, zipPath); err != nil {
		return fmt.Errorf("funczip: %w", err)
	}
	return nil
}

// HasSource reports whether dir holds a function package yet (a non-test .go file): folders
// of functions still being written are skipped rather than failing the whole run.
func HasSource(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return true
		}
	}
	return false
}

// Functions lists the function folders under root/functions (those with a go.mod).
func Functions(root string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, fmt.Errorf("funczip: %w", err)
	}
	var dirs []string
	for _, e := range ents {
		d := filepath.Join(root, "functions", e.Name())
		if _, err := os.Stat(filepath.Join(d, "go.mod")); e.IsDir() && err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}
