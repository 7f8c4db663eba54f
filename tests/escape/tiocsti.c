/*
 * tiocsti: pushes TEXT into the input of the terminal on its stdin with
 * TIOCSTI, one byte at a time, as a keystroke-injection attack on the
 * terminal a container was given would.
 *
 *   cc -static -O2 -o tiocsti tiocsti.c
 *   tiocsti TEXT      prints "injected N" or "refused ERRNO-TEXT"
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: tiocsti TEXT\n");
		return 2;
	}
	size_t n = strlen(argv[1]);
	for (size_t i = 0; i < n; i++) {
		if (ioctl(0, TIOCSTI, &argv[1][i]) != 0) {
			printf("refused %s\n", strerror(errno));
			return 1;
		}
	}
	printf("injected %zu\n", n);
	return 0;
}
