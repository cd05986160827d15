// Package kafkaacl reads the broker's ACL file (infra/kafka/acls.conf: who may do what) and makes
// the broker's ACLs exactly those of the file.
//
// One ACL a line, fields separated by blanks, # starts a comment:
//
//	principal  resource  pattern  name  operations
//	order      topic     literal  inventory-events  Read
//	connect    topic     prefixed __debezium-heartbeat.  Create,Write,Describe
//
// resource is topic, group, transactional-id or cluster; pattern literal or prefixed (name * with literal: every
// resource of the type); operations a comma-separated list of Kafka's ACL operations (Read,
// Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs, IdempotentWrite, All).
// Every ACL allows, from any host; what no ACL allows is denied (allow.everyone.if.no.acl.found=false).
package kafkaacl

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// ACL is one permission: Principal may do Operation on the resources Pattern/Name of type Resource.
type ACL struct {
	Principal string
	Resource  sarama.AclResourceType
	Pattern   sarama.AclResourcePatternType
	Name      string
	Operation sarama.AclOperation
}

// String is the ACL as a line of the file (one operation).
func (a ACL) String() string {
	return fmt.Sprintf("%s %s %s %s %s", a.Principal, strings.ToLower(a.Resource.String()),
		strings.ToLower(a.Pattern.String()), a.Name, a.Operation.String())
}

// Spec is the content of an ACL file.
type Spec struct {
	ACLs []ACL
}

// Principals returns every principal the file names, sorted.
func (s Spec) Principals() []string {
	var out []string
	for _, a := range s.ACLs {
		if !slices.Contains(out, a.Principal) {
			out = append(out, a.Principal)
		}
	}
	slices.Sort(out)
	return out
}

// PasswordVar is the environment variable that holds principal's password:
// <PRINCIPAL>_KAFKA_PASSWORD (ORDER_KAFKA_PASSWORD, the service's own setting).
func PasswordVar(principal string) string {
	return strings.ToUpper(strings.ReplaceAll(principal, "-", "_")) + "_KAFKA_PASSWORD"
}

// ReadFile reads an ACL file.
func ReadFile(path string) (Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read ACL file: %w", err)
	}
	defer f.Close()
	var spec Spec
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		acls, err := parse(fields)
		if err != nil {
			return Spec{}, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		spec.ACLs = append(spec.ACLs, acls...)
	}
	if err := sc.Err(); err != nil {
		return Spec{}, fmt.Errorf("read ACL file: %w", err)
	}
	return spec, nil
}

// parse turns the fields of one line into its ACLs, one per operation.
func parse(fields []string) ([]ACL, error) {
	if len(fields) != 5 {
		return nil, fmt.Errorf("want 5 fields (principal resource pattern name operations), got %d", len(fields))
	}
	a := ACL{Principal: fields[0], Name: fields[3]}
	switch fields[1] {
	case "topic":
		a.Resource = sarama.AclResourceTopic
	case "group":
		a.Resource = sarama.AclResourceGroup
	case "transactional-id":
		a.Resource = sarama.AclResourceTransactionalID
	case "cluster":
		a.Resource, a.Name = sarama.AclResourceCluster, "kafka-cluster"
	default:
		return nil, fmt.Errorf("resource %q: want topic, group, transactional-id or cluster", fields[1])
	}
	switch fields[2] {
	case "literal":
		a.Pattern = sarama.AclPatternLiteral
	case "prefixed":
		a.Pattern = sarama.AclPatternPrefixed
	default:
		return nil, fmt.Errorf("pattern %q: want literal or prefixed", fields[2])
	}
	var out []ACL
	for _, op := range strings.Split(fields[4], ",") {
		if err := a.Operation.UnmarshalText([]byte(op)); err != nil || a.Operation == sarama.AclOperationUnknown ||
			a.Operation == sarama.AclOperationAny {
			return nil, fmt.Errorf("operation %q", op)
		}
		out = append(out, a)
	}
	return out, nil
}

// Admin is what Apply needs of a sarama.ClusterAdmin.
type Admin interface {
	ListAcls(filter sarama.AclFilter) ([]sarama.ResourceAcls, error)
	CreateACLs(resourceACLs []*sarama.ResourceAcls) error
	DeleteACL(filter sarama.AclFilter, validateOnly bool) ([]sarama.MatchingAcl, error)
}

// Apply makes the broker's ACLs those of spec: it creates the missing ones and deletes every other
// one, then reads them back to check. It returns how many it added and removed.
func Apply(admin Admin, spec Spec) (added, removed int, err error) {
	have, err := list(admin)
	if err != nil {
		return 0, 0, err
	}
	want := map[ACL]bool{}
	for _, a := range spec.ACLs {
		want[a] = true
	}
	var create []*sarama.ResourceAcls
	for _, a := range spec.ACLs {
		if _, ok := have[a]; !ok {
			create = append(create, &sarama.ResourceAcls{
				Resource: sarama.Resource{ResourceType: a.Resource, ResourceName: a.Name, ResourcePatternType: a.Pattern},
				Acls: []*sarama.Acl{{Principal: "User:" + a.Principal, Host: "*", Operation: a.Operation,
					PermissionType: sarama.AclPermissionAllow}},
			})
		}
	}
	if len(create) > 0 {
		if err := admin.CreateACLs(create); err != nil {
			return 0, 0, fmt.Errorf("create ACLs: %w", err)
		}
	}
	for a, filter := range have {
		if want[a] {
			continue
		}
		if _, err := admin.DeleteACL(filter, false); err != nil {
			return len(create), removed, fmt.Errorf("delete ACL %s: %w", a, err)
		}
		removed++
	}
	// sarama does not report a refused creation: read the ACLs back. In KRaft the controller
	// commits them and the broker's authorizer learns them from the metadata log a moment later,
	// so a missing one is read again for a while before it counts as refused.
	deadline := time.Now().Add(aclPropagation)
	for {
		missing, err := firstMissing(admin, want)
		if err != nil {
			return len(create), removed, err
		}
		if missing == nil {
			return len(create), removed, nil
		}
		if time.Now().After(deadline) {
			return len(create), removed, fmt.Errorf("the broker did not keep the ACL %q", *missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// aclPropagation bounds how long Apply waits for the broker to show the ACLs it created.
const aclPropagation = 15 * time.Second

// firstMissing returns an ACL of want that the broker does not list, or nil.
func firstMissing(admin Admin, want map[ACL]bool) (*ACL, error) {
	now, err := list(admin)
	if err != nil {
		return nil, err
	}
	for a := range want {
		if _, ok := now[a]; !ok {
			return &a, nil
		}
	}
	return nil, nil
}

// list reads every ACL of the broker, each with the filter that deletes exactly it. An ACL that is
// not an allow from any host for a user principal is kept under a principal that no file names,
// so that Apply removes it.
func list(admin Admin) (map[ACL]sarama.AclFilter, error) {
	all, err := admin.ListAcls(sarama.AclFilter{ResourceType: sarama.AclResourceAny,
		ResourcePatternTypeFilter: sarama.AclPatternAny, Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny})
	if err != nil {
		return nil, fmt.Errorf("list ACLs: %w", err)
	}
	out := map[ACL]sarama.AclFilter{}
	for _, r := range all {
		for _, a := range r.Acls {
			acl := ACL{Principal: strings.TrimPrefix(a.Principal, "User:"), Resource: r.ResourceType,
				Pattern: r.ResourcePatternType, Name: r.ResourceName, Operation: a.Operation}
			if !strings.HasPrefix(a.Principal, "User:") || a.Host != "*" || a.PermissionType != sarama.AclPermissionAllow {
				acl.Principal = "\x00" + a.Principal + "@" + a.Host + "/" + a.PermissionType.String()
			}
			out[acl] = sarama.AclFilter{
				ResourceType: r.ResourceType, ResourceName: &r.ResourceName, ResourcePatternTypeFilter: r.ResourcePatternType,
				Principal: &a.Principal, Host: &a.Host, Operation: a.Operation, PermissionType: a.PermissionType,
			}
		}
	}
	return out, nil
}
