// SPDX-License-Identifier: Apache-2.0
/*
 * The pod sandbox process of the test cluster: it holds the pod's namespaces open and does nothing else.
 * No image can be pulled here, so the cluster's sandbox image is built from this file (test/tools/cluster/start.sh).
 *
 * As PID 1 of a pod's PID namespace it must reap orphans (zombies would pile up otherwise) and must exit on
 * SIGTERM/SIGINT by itself: the kernel ignores signals with the default action for a namespace's init.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_child(int sig)
{
	(void)sig;
	int saved = errno;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static int handle(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	/* SA_NOCLDSTOP: a stopped child is no reason to wake up. */
	sa.sa_flags = sig == SIGCHLD ? SA_NOCLDSTOP : 0;
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		/* Any argument: print what this is and exit (a quick check that the image runs). */
		puts("carnx test pause");
		return 0;
	}
	if (handle(SIGTERM, on_stop) || handle(SIGINT, on_stop) || handle(SIGCHLD, on_child)) {
		perror("sigaction");
		return 1;
	}
	/*
	 * The signals stay blocked except inside sigsuspend(), so one that arrives between the test of `stop` and the
	 * wait cannot be missed (with pause() it could, and the process would then sleep until SIGKILL).
	 */
	sigset_t blocked, waiting;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGCHLD);
	sigprocmask(SIG_BLOCK, &blocked, &waiting);
	sigdelset(&waiting, SIGTERM);
	sigdelset(&waiting, SIGINT);
	sigdelset(&waiting, SIGCHLD);
	while (!stop)
		sigsuspend(&waiting);
	return 0;
}
