/* registry.c — every app, looked up by name. Adding an app: one file in
 * apps/, one line here, one line in meson.build. */
#include "app.h"

#include <string.h>

extern const struct app app_hello, app_json, app_echo, app_sleep, app_cpu, app_proxy,
	app_proxy_async, app_fanout;

static const struct app *const registry[] = {
	&app_hello, &app_json,	      &app_echo,   &app_sleep,
	&app_cpu,   &app_proxy, &app_proxy_async, &app_fanout,
	NULL,
};

const struct app *app_find(const char *name)
{
	for (size_t i = 0; registry[i]; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

const struct app *const *app_all(void)
{
	return registry;
}
