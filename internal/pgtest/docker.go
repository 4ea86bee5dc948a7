package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// EnvDockerImage overrides the image of docker clusters.
const EnvDockerImage = "ORDO_TEST_PG_IMAGE"

// dockerImage is the image of docker clusters, the Postgres version of the
// local binaries on our machines.
const dockerImage = "postgres:15-alpine"

// dockerProbeTimeout bounds the check for a Docker engine, which must not
// hang tests on machines without one.
const dockerProbeTimeout = 5 * time.Second

var dockerProbe struct {
	sync.Once
	err error
}

// dockerAvailable reports whether a Docker engine answers, checking once per
// process.
func dockerAvailable(ctx context.Context) error {
	dockerProbe.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dockerProbeTimeout)
		defer cancel()
		result := make(chan error, 1)
		go func() {
			// NewDockerProvider takes no context; if it hangs, this
			// goroutine is abandoned.
			p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
			if err == nil {
				err = p.Health(ctx)
			}
			result <- err
		}()
		select {
		case err := <-result:
			if err != nil {
				dockerProbe.err = fmt.Errorf("no Docker engine: %w", err)
			}
		case <-ctx.Done():
			dockerProbe.err = fmt.Errorf("no Docker engine answered within %v", dockerProbeTimeout)
		}
	})
	return dockerProbe.err
}

// dockerServer is a Postgres container.
type dockerServer struct {
	ctr     *tcpostgres.PostgresContainer
	url     string
	keep    bool
	stopped bool
}

func startDocker(ctx context.Context, opts Options) (*Cluster, error) {
	port := opts.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	image := os.Getenv(EnvDockerImage)
	if image == "" {
		image = dockerImage
	}
	settings := maps.Clone(testSettings)
	settings["listen_addresses"] = "*" // the container's own interfaces
	maps.Copy(settings, opts.Settings)
	cmd := []string{"postgres"}
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		cmd = append(cmd, "-c", name+"="+settings[name])
	}
	// A fixed host port, so that the URL survives Stop and Start.
	bindPort := func(hc *container.HostConfig) {
		hc.PortBindings = network.PortMap{
			network.MustParsePort("5432/tcp"): {{HostPort: strconv.Itoa(port)}},
		}
	}
	ctr, err := tcpostgres.Run(ctx, image,
		testcontainers.WithLogger(tclog.NewNoopLogger()),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithDatabase("postgres"),
		testcontainers.WithEnv(map[string]string{
			"POSTGRES_HOST_AUTH_METHOD": "trust",
			"POSTGRES_INITDB_ARGS":      "--no-sync --encoding=UTF8 --locale=C",
		}),
		testcontainers.WithCmd(cmd...),
		testcontainers.WithHostConfigModifier(bindPort),
		testcontainers.WithLabels(map[string]string{"ordo.pgtest.name": opts.Name}),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		if ctr != nil {
			_ = ctr.Terminate(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	host, err := ctr.Host(ctx)
	if err != nil {
		_ = ctr.Terminate(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("docker host: %w", err)
	}
	u := localURL(host, port)
	s := &dockerServer{ctr: ctr, url: u.String(), keep: opts.Keep}
	if err := waitReady(ctx, s.url, nil); err != nil {
		err = fmt.Errorf("%w\n%s", err, s.logTail())
		_ = ctr.Terminate(context.WithoutCancel(ctx))
		return nil, err
	}
	return &Cluster{
		name:    opts.Name,
		backend: BackendDocker,
		url:     u,
		port:    port,
		logf:    opts.Logf,
		srv:     s,
	}, nil
}

func (s *dockerServer) start(ctx context.Context) error {
	if !s.stopped {
		return nil
	}
	if err := s.ctr.Start(ctx); err != nil {
		return err
	}
	s.stopped = false
	if err := waitReady(ctx, s.url, nil); err != nil {
		return fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return nil
}

func (s *dockerServer) stop(ctx context.Context) error {
	if s.stopped {
		return nil
	}
	timeout := connectTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	// The postgres image stops with SIGINT: a fast shutdown.
	if err := s.ctr.Stop(ctx, &timeout); err != nil {
		return err
	}
	s.stopped = true
	return nil
}

func (s *dockerServer) stopImmediate(ctx context.Context) error {
	if s.stopped {
		return nil
	}
	// SIGQUIT is postgres's immediate shutdown; docker stop then waits for
	// the container to exit.
	if err := s.signal(ctx, "QUIT"); err != nil {
		return err
	}
	return s.stop(ctx)
}

func (s *dockerServer) kill() error {
	if s.stopped {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := s.signal(ctx, "KILL"); err != nil {
		return err
	}
	s.stopped = true
	return nil
}

// signal sends sig to the container's main process.
func (s *dockerServer) signal(ctx context.Context, sig string) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.ContainerKill(ctx, s.ctr.GetContainerID(), client.ContainerKillOptions{Signal: sig})
	return err
}

func (s *dockerServer) remove(ctx context.Context) error {
	if s.keep {
		return s.stop(ctx)
	}
	return s.ctr.Terminate(ctx)
}

func (s *dockerServer) logTail() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := s.ctr.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	if len(b) > logTailSize {
		b = b[len(b)-logTailSize:]
	}
	return string(b)
}
