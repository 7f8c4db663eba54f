/*
 * bench: one timed job, timed from inside, so that a container's start
 * cost is not part of the number. Prints the elapsed nanoseconds.
 *
 *   cc -static -O2 -o bench bench.c
 *   bench cpu|getppid|read_zero
 *   bench read_file|stat|open_close [PATH]
 *
 * cpu         a tight integer loop, no syscalls (~0.5 s here)
 * getppid     2M getppid calls: every one passes the seccomp filter
 * read_zero   1M 64-byte reads of /dev/zero: seccomp plus a file read
 * read_file   PATH (4 KiB or more) opened once, then 400k 4 KiB preads
 *             of it (page cache): seccomp plus a filesystem read
 * stat        200k stat() calls of PATH: path walk, no Landlock check
 *             (stat is not an access Landlock handles)
 * open_close  100k open(O_RDONLY)+close of PATH: path walk plus
 *             Landlock's file_open check on every open
 *
 * PATH defaults to DATA_PATH, the file the benchmark image carries.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CPU_ITERATIONS 180000000UL
#define GETPPID_CALLS 2000000L
#define READ_ZERO_CALLS 1000000L
#define READ_ZERO_BYTES 64
#define READ_FILE_CALLS 400000L
#define READ_FILE_BYTES 4096
#define STAT_CALLS 200000L
#define OPEN_CLOSE_CALLS 100000L
#define DATA_PATH "/usr/local/share/bench/data"

static const char *path = DATA_PATH;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Where the CPU job's result goes, so the loop cannot be dropped. */
static volatile unsigned long sink;

/* xorshift64: a dependency chain the compiler cannot fold away. */
static int job_cpu(void)
{
	unsigned long x = 88172645463325252UL;
	for (unsigned long i = 0; i < CPU_ITERATIONS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	sink = x;
	return 0;
}

/* Raw syscall: nothing in libc may cache the answer. */
static int job_getppid(void)
{
	for (long i = 0; i < GETPPID_CALLS; i++)
		syscall(SYS_getppid);
	return 0;
}

static int job_read_zero(void)
{
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("bench: open /dev/zero");
		return 1;
	}
	char buf[READ_ZERO_BYTES];
	for (long i = 0; i < READ_ZERO_CALLS; i++) {
		if (read(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
			perror("bench: read /dev/zero");
			close(fd);
			return 1;
		}
	}
	close(fd);
	return 0;
}

static int job_read_file(void)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("bench: open");
		return 1;
	}
	static char buf[READ_FILE_BYTES];
	for (long i = 0; i < READ_FILE_CALLS; i++) {
		if (pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) {
			perror("bench: pread (is the file 4 KiB or more?)");
			close(fd);
			return 1;
		}
	}
	sink = (unsigned char)buf[READ_FILE_BYTES - 1];
	close(fd);
	return 0;
}

static int job_stat(void)
{
	struct stat st;
	for (long i = 0; i < STAT_CALLS; i++) {
		if (stat(path, &st) != 0) {
			perror("bench: stat");
			return 1;
		}
	}
	sink = (unsigned long)st.st_size;
	return 0;
}

static int job_open_close(void)
{
	for (long i = 0; i < OPEN_CLOSE_CALLS; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			perror("bench: open");
			return 1;
		}
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(void);
		int takes_path;
	} jobs[] = {
		{"cpu", job_cpu, 0},
		{"getppid", job_getppid, 0},
		{"read_zero", job_read_zero, 0},
		{"read_file", job_read_file, 1},
		{"stat", job_stat, 1},
		{"open_close", job_open_close, 1},
	};
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench cpu|getppid|read_zero|read_file|stat|open_close [PATH]\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
		if (strcmp(argv[1], jobs[i].name) != 0)
			continue;
		if (argc == 3) {
			if (!jobs[i].takes_path) {
				fprintf(stderr, "bench: %s takes no path\n", argv[1]);
				return 2;
			}
			path = argv[2];
		}
		long long t0 = now_ns();
		int rc = jobs[i].run();
		long long t1 = now_ns();
		if (rc != 0)
			return rc;
		printf("%lld\n", t1 - t0);
		return 0;
	}
	fprintf(stderr, "bench: unknown job %s\n", argv[1]);
	return 2;
}
