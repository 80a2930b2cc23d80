// compose-check validates deploy/compose/compose.yaml as `docker compose config` would, without
// Docker: compose-go, the library Docker Compose itself loads files with, reads the file with one
// municipality's environment file, interpolates it (a missing required variable is an error),
// validates it against the Compose Specification's JSON schema (embedded in compose-go) and
// checks its references. Then the files it mounts or passes as secrets must exist.
//
//	compose-check deploy/compose/compose.yaml deploy/compose/env/weert.env [more.env ...]
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: compose-check COMPOSE_FILE ENV_FILE...")
		os.Exit(64)
	}
	failed := false
	for _, envFile := range os.Args[2:] {
		if err := check(os.Args[1], envFile); err != nil {
			fmt.Fprintf(os.Stderr, "%s with %s: %v\n", os.Args[1], envFile, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func check(composeFile, envFile string) error {
	// Only the environment file counts, not this shell's variables: the check must not depend
	// on who runs it.
	options, err := cli.NewProjectOptions(
		[]string{composeFile},
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithProfiles([]string{"*"}),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	var missing []string
	for name, secret := range project.Secrets {
		if secret.File != "" && !exists(secret.File) {
			missing = append(missing, fmt.Sprintf("secret %s: %s", name, secret.File))
		}
	}
	for name, service := range project.Services {
		for _, volume := range service.Volumes {
			if volume.Type == types.VolumeTypeBind && !exists(volume.Source) {
				missing = append(missing, fmt.Sprintf("service %s mounts %s", name, volume.Source))
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("missing files: %v", missing)
	}
	fmt.Printf("%s with %s: valid, project %s, %d services\n", composeFile, envFile, project.Name, len(project.Services))
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
