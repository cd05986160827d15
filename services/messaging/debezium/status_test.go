package debezium

import (
	"slices"
	"testing"
)

func TestStatus(t *testing.T) {
	const failed = "org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\n" +
		"\tat org.apache.kafka.connect.runtime.errors.RetryWithToleranceOperator.execAndHandleError(RetryWithToleranceOperator.java:230)\n" +
		"Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user \"debezium_order\"\n" +
		"\tat org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)\n"
	running := State{State: "RUNNING"}
	tests := []struct {
		name      string
		status    Status
		running   bool
		taskState string
		first     string
		causes    []string
	}{
		{name: "running", status: Status{Connector: running, Tasks: []TaskStatus{{ID: 0, State: running}}},
			running: true, taskState: "RUNNING"},
		{name: "no task yet", status: Status{Connector: running},
			taskState: "NO TASK"},
		{name: "task failed", status: Status{Connector: running, Tasks: []TaskStatus{{ID: 0, State: State{State: "FAILED", Trace: failed}}}},
			taskState: "FAILED",
			first:     `org.postgresql.util.PSQLException: FATAL: password authentication failed for user "debezium_order"`,
			causes: []string{"org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler",
				`Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user "debezium_order"`}},
		{name: "connector paused", status: Status{Connector: State{State: "PAUSED"}, Tasks: []TaskStatus{{ID: 0, State: State{State: "PAUSED"}}}},
			taskState: "PAUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.status.Running(); got != tt.running {
				t.Errorf("Running() = %v, want %v", got, tt.running)
			}
			if got := tt.status.TaskState(); got != tt.taskState {
				t.Errorf("TaskState() = %q, want %q", got, tt.taskState)
			}
			if got := tt.status.FirstTrace(); got != tt.first {
				t.Errorf("FirstTrace() = %q, want %q", got, tt.first)
			}
			if got := tt.status.Causes(6); !slices.Equal(got, tt.causes) {
				t.Errorf("Causes(6) = %q, want %q", got, tt.causes)
			}
			if got := tt.status.Causes(1); len(tt.causes) > 0 && !slices.Equal(got, tt.causes[:1]) {
				t.Errorf("Causes(1) = %q, want %q", got, tt.causes[:1])
			}
		})
	}
}
