// Command bundlecheck validates trainenv's OLM bundle with operator-framework/api's own
// validators: the default bundle, CSV and CRD validators plus the optional suites
// `operator-sdk bundle validate --select-optional suite=operatorframework` runs
// (OperatorHub, standard capabilities and categories, good practices, deprecated APIs).
// It lives in its own module so the operator's module does not carry operator-framework's
// dependencies. `make test-tools` runs its tests, which validate the checked-in bundle.
//
// usage: go run . BUNDLE_DIR [K8S_VERSION]
package main

import (
	"fmt"
	"os"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
)

// validators are the default validators and the operatorframework suite.
var validators = append(interfaces.Validators{}, append(validation.DefaultBundleValidators,
	validation.OperatorHubV2Validator,
	validation.StandardCapabilitiesValidator,
	validation.StandardCategoriesValidator,
	validation.GoodPracticesValidator,
	validation.AlphaDeprecatedAPIsValidator,
	validation.ObjectValidator,
)...)

// Check loads the bundle in dir and returns every error and warning the validators report.
// k8sVersion is the cluster version the deprecated-API check checks against.
func Check(dir, k8sVersion string) (errs, warnings []string, err error) {
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("loading the bundle in %s: %w", dir, err)
	}
	// Optional values travel as a map among the objects, as operator-sdk passes them.
	objs := append(bundle.ObjectsToValidate(), map[string]string{"k8s-version": k8sVersion})
	results := validators.Validate(objs...)
	for _, r := range results {
		for _, e := range r.Errors {
			errs = append(errs, describe(r.Name, e))
		}
		for _, w := range r.Warnings {
			warnings = append(warnings, describe(r.Name, w))
		}
	}
	return errs, warnings, nil
}

func describe(object string, e errors.Error) string {
	return fmt.Sprintf("%s: %s", object, e.Error())
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bundlecheck BUNDLE_DIR [K8S_VERSION]")
		os.Exit(2)
	}
	version := "1.37"
	if len(os.Args) > 2 {
		version = os.Args[2]
	}
	errs, warnings, err := Check(os.Args[1], version)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, w := range warnings {
		fmt.Println("warning:", w)
	}
	for _, e := range errs {
		fmt.Println("error:", e)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
	fmt.Printf("bundle valid: no errors, %d warnings (the tests allow only known ones)\n", len(warnings))
}
