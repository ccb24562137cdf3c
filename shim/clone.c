/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM cloned from a template (runtime/template.h) wakes up with the
 * template's memory, and with it the template's random state and hostname.
 * Before any container runs in it, the owner shim gives it an identity of
 * its own through the agent:
 *  - 64 bytes from the host's getrandom, credited: the agent adds them and
 *    reseeds the guest's CRNG (RNDADDENTROPY + RNDRESEEDCRNG), so no two
 *    clones draw the same numbers from then on (getrandom, /dev/urandom,
 *    new processes' ASLR and stack canaries, the boot_id the kernel makes at
 *    its first read);
 *  - the VM's hostname (also on cold boots: one rule for both);
 *  - the time (vm.c, set_time, as on cold boots).
 * The vsock connections are new ones: the restore resets the transport.
 * A clone that cannot be reseeded is not used: the create fails.
 *
 * If the restore itself fails (a template made by another kvrun-vmm, a
 * damaged file), the VMM exits before the agent answers: the shim then
 * boots the VM cold with the command line kvrun gave as the fallback.
 */
#include "shim/internal.h"

#include <string.h>
#include <sys/random.h>

#define CLONE_SEED_BYTES 64

static int clone_reseed(struct shim *s, struct kv_err **err)
{
	uint8_t seed[CLONE_SEED_BYTES];
	size_t got = 0;
	while (got < sizeof(seed)) {
		ssize_t r = getrandom(seed + got, sizeof(seed) - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kv_err_make(err, errno, "getrandom");
		got += (size_t)r;
	}
	char b64[(CLONE_SEED_BYTES + 2) / 3 * 4 + 1];
	kv_b64_encode(seed, sizeof(seed), b64);
	explicit_bzero(seed, sizeof(seed));
	cleanup_free char *p = kv_req_add_entropy(b64, CLONE_SEED_BYTES * 8, err);
	explicit_bzero(b64, sizeof(b64));
	cleanup_msg struct kv_msg resp = {0};
	if (!p || kv_agent_client_call(s->agent, KV_OP_ADD_ENTROPY, p, &resp, err) < 0)
		return kv_err_wrap(err, "reseed the clone's random number generator");
	return 0;
}

static int clone_hostname(struct shim *s, struct kv_err **err)
{
	cleanup_free char *p = kv_req_set_hostname(s->req.hostname, err);
	cleanup_msg struct kv_msg resp = {0};
	if (!p || kv_agent_client_call(s->agent, KV_OP_SET_HOSTNAME, p, &resp, err) < 0)
		return kv_err_wrap(err, "set the VM's hostname");
	return 0;
}

int shim_clone_identity(struct shim *s, struct kv_err **err)
{
	if (s->req.clone && clone_reseed(s, err) < 0)
		return -1;
	if (!s->req.hostname)
		return 0;
	struct kv_err *e = NULL;
	if (clone_hostname(s, &e) == 0)
		return 0;
	if (s->req.clone) /* the template's name must not stay */
		return err && !*err ? (*err = e, -1) : (kv_err_free(e), -1);
	kv_warn("%s", e->msg);
	kv_err_free(e);
	return 0;
}

bool shim_clone_fallback(struct shim *s, const struct kv_err *why)
{
	if (!s->req.vmm_argv_cold)
		return false;
	kv_warn("cloning the VM from its template failed (%s); booting it cold", why->msg);
	for (char **a = s->req.vmm_argv; a && *a; a++)
		free(*a);
	free(s->req.vmm_argv);
	s->req.vmm_argv = steal_ptr(s->req.vmm_argv_cold);
	s->req.clone = false;
	return true;
}
