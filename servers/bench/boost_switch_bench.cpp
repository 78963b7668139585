// boost_switch_bench.cpp — the reference for coro-switch-bench: Boost.Context's
// raw fcontext switch and its fiber API, timed the same way as ours (ping-pong,
// two switches per round trip). Built only when meson finds Boost.Context.
#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>

#include <chrono>
#include <cstdlib>
#include <utility>

namespace bctx = boost::context;

static double now_ns()
{
	using namespace std::chrono;
	return (double)duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

static void pong(bctx::detail::transfer_t t)
{
	for (;;)
		t = bctx::detail::jump_fcontext(t.fctx, nullptr);
}

extern "C" double boost_fcontext_ns(unsigned long n)
{
	const std::size_t size = 64 * 1024;
	char *stack = static_cast<char *>(std::malloc(size));
	if (!stack)
		return -1;
	bctx::detail::fcontext_t c = bctx::detail::make_fcontext(stack + size, size, pong);
	bctx::detail::transfer_t t = bctx::detail::jump_fcontext(c, nullptr);
	double t0 = now_ns();
	for (unsigned long i = 0; i < n; i++)
		t = bctx::detail::jump_fcontext(t.fctx, nullptr);
	double ns = (now_ns() - t0) / (2.0 * (double)n);
	std::free(stack); // pong stays parked; nothing refers to its stack
	return ns;
}

extern "C" double boost_fiber_ns(unsigned long n)
{
	bctx::fiber f{ [](bctx::fiber &&m) {
		for (;;)
			m = std::move(m).resume();
		return std::move(m);
	} };
	f = std::move(f).resume();
	double t0 = now_ns();
	for (unsigned long i = 0; i < n; i++)
		f = std::move(f).resume();
	return (now_ns() - t0) / (2.0 * (double)n);
	// f unwinds its stack here (forced_unwind), as Boost intends.
}
