/*
 * ids: prints who the process is, in one line, for the no_new_privileges
 * test (tests/claims.rs), which installs a setuid-root copy of it:
 *
 *   uid=REAL/EFFECTIVE/SAVED gid=REAL/EFFECTIVE/SAVED capeff=HEX nnp=0|1
 *
 * cc -static -O2 -o ids ids.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0) {
		perror("getres[ug]id");
		return 1;
	}
	char capeff[32] = "?";
	FILE *f = fopen("/proc/self/status", "r");
	if (f) {
		char line[256];
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "CapEff: %31s", capeff) == 1)
				break;
		fclose(f);
	}
	int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	printf("uid=%u/%u/%u gid=%u/%u/%u capeff=%s nnp=%d\n", ru, eu, su, rg, eg, sg, capeff,
	       nnp);
	return 0;
}
