package entrypoint

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// The tests run the supervisor and the entrypoint in a child process (this test binary,
// re-executed), because they reap every child of the process and forward its signals:
// they must be the only thing going on in it, as they are as PID 1.
const (
	supervisorSpecEnv = "TRAINENV_TEST_SUPERVISOR"
	entrypointSpecEnv = "TRAINENV_TEST_ENTRYPOINT"
)

// supervisorSpec is what the child supervises.
type supervisorSpec struct {
	Services       []Service
	TerminationLog string
	GraceMillis    int
	// StopAfterMillis, when > 0, sends StopReason on the supervisor's Stop channel.
	StopAfterMillis int
	StopReason      string
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(supervisorSpecEnv); spec != "" {
		os.Exit(runSupervisorChild(spec))
	}
	if spec := os.Getenv(entrypointSpecEnv); spec != "" {
		var p Paths
		if err := json.Unmarshal([]byte(spec), &p); err != nil {
			panic(err)
		}
		os.Exit(Run(p, os.Stderr))
	}
	os.Exit(m.Run())
}

func runSupervisorChild(spec string) int {
	var s supervisorSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		panic(err)
	}
	sup := &Supervisor{Services: s.Services, TerminationLog: s.TerminationLog,
		Grace: time.Duration(s.GraceMillis) * time.Millisecond, Log: os.Stderr}
	if s.StopAfterMillis > 0 {
		stop := make(chan string, 1)
		time.AfterFunc(time.Duration(s.StopAfterMillis)*time.Millisecond, func() { stop <- s.StopReason })
		sup.Stop = stop
	}
	return sup.Run()
}
