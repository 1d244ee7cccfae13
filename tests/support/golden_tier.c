/* golden_tier.c: exact-tier selection and the tier report of the golden tests. */
#include "tests/support/golden_tier.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "tests/support/test_common.h"

static void print_recording(const char *golden_dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/FINGERPRINT.json", golden_dir);
	cJSON *j = tc_load_json(path);
	const cJSON *r = j ? cJSON_GetObjectItemCaseSensitive(j, "recorded_on") : NULL;
	printf("# golden recorded on: %s\n",
	       cJSON_IsString(r) ? r->valuestring : "unknown (no FINGERPRINT.json)");
	cJSON_Delete(j);
}

int tc_golden_tier(const char *label, const char *golden_dir, const tc_exact_tier *tiers,
		   int n)
{
	char key[512];
	tc_numerics_key(key, sizeof key);
	int hit = -1;
	for (int i = 0; i < n && hit < 0; i++)
		for (int p = 0; p < 4 && tiers[i].patterns[p] && hit < 0; p++)
			if (fnmatch(tiers[i].patterns[p], key, 0) == 0)
				hit = i;
	printf("# %s\n", label);
	print_recording(golden_dir);
	if (hit >= 0) {
		printf("# tier exact: ran (%s budgets: live key '%s' matches)\n", tiers[hit].name, key);
	} else {
		printf("# tier exact: skipped (live key '%s' matches none of:", key);
		for (int i = 0; i < n; i++)
			printf(" %s='%s'", tiers[i].name, tiers[i].patterns[0]);
		printf(")\n");
	}
	printf("# tier portable: ran (always)\n");
	return hit;
}
