// filters_math.cpp -- the math filters. Operands go through Liquid's
// to_number; two integers give an integer (a double past int64's range).
// Liquid computes with decimals, so a float result is rounded to the
// decimal places its operands had: 0.1 | plus: 0.2 is 0.3, as in Liquid.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "internal.h"

namespace opk::liquid::internal {

namespace {

bool float_result(FilterEnv& e, double r) {
  return e.make(r);
}

// A double that is a whole number, as an integer when int64 holds it.
bool whole(FilterEnv& e, double d) {
  if (d >= -9.2e18 && d <= 9.2e18) return e.make(static_cast<int64_t>(d));
  return e.make(d);
}

bool arith(FilterEnv& e, char op) {
  const json a = to_number(e.in()), b = to_number(e.arg(0));
  if (a.is_number_integer() && b.is_number_integer()) {
    const int64_t x = a.get<int64_t>(), y = b.get<int64_t>();
    int64_t r = 0;
    switch (op) {
      case '+':
        if (!__builtin_add_overflow(x, y, &r)) return e.make(r);
        break;
      case '-':
        if (!__builtin_sub_overflow(x, y, &r)) return e.make(r);
        break;
      case '*':
        if (!__builtin_mul_overflow(x, y, &r)) return e.make(r);
        break;
      case '/':
        if (y == 0) return e.fail("divided by 0");
        if (x == INT64_MIN && y == -1) break;
        r = x / y;
        if (x % y != 0 && ((x < 0) != (y < 0))) --r;  // Ruby rounds toward -infinity
        return e.make(r);
      case '%':
        if (y == 0) return e.fail("divided by 0");
        if (y == -1) return e.make(0);
        r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return e.make(r);
    }
    // int64 overflowed: as doubles, unrounded.
    const double dx = static_cast<double>(x), dy = static_cast<double>(y);
    return float_result(e, op == '+' ? dx + dy : op == '-' ? dx - dy : op == '*' ? dx * dy : dx / dy);
  }
  const double x = a.get<double>(), y = b.get<double>();
  const int places = std::max(decimals(x), decimals(y));
  switch (op) {
    case '+':
      return float_result(e, round_decimal(x + y, places));
    case '-':
      return float_result(e, round_decimal(x - y, places));
    case '*': {
      const int p = decimals(x) + decimals(y);
      return float_result(e, p <= 17 ? round_decimal(x * y, p) : x * y);
    }
    case '/':
      if (y == 0) return e.fail("divided by 0");
      return float_result(e, x / y);
    default: {
      if (y == 0) return e.fail("divided by 0");
      // On the operands' decimals as integers when they fit: 0.3 % 0.1 is 0.0.
      const double scale = std::pow(10.0, places);
      if (places <= 15 && std::fabs(x) * scale < 9e15 && std::fabs(y) * scale < 9e15) {
        const auto xi = static_cast<int64_t>(std::llround(x * scale)),
                   yi = static_cast<int64_t>(std::llround(y * scale));
        if (yi != 0) {
          int64_t r = xi % yi;
          if (r != 0 && ((r < 0) != (yi < 0))) r += yi;
          return float_result(e, round_decimal(static_cast<double>(r) / scale, places));
        }
      }
      double r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return float_result(e, r);
    }
  }
}

bool f_plus(FilterEnv& e) {
  return arith(e, '+');
}
bool f_minus(FilterEnv& e) {
  return arith(e, '-');
}
bool f_times(FilterEnv& e) {
  return arith(e, '*');
}
bool f_divided_by(FilterEnv& e) {
  return arith(e, '/');
}
bool f_modulo(FilterEnv& e) {
  return arith(e, '%');
}

bool finite(FilterEnv& e, const json& n) {
  if (n.is_number_float() && !std::isfinite(n.get<double>())) return e.fail("cannot round " + to_s(n));
  return true;
}

bool f_round(FilterEnv& e) {
  const json a = to_number(e.in());
  int64_t places = 0;
  if (e.has_arg(0)) {
    const json p = to_number(e.arg(0));
    places = p.is_number_integer() ? p.get<int64_t>() : static_cast<int64_t>(p.get<double>());
  }
  places = std::clamp<int64_t>(places, -30, 30);
  if (!finite(e, a)) return false;
  if (a.is_number_integer()) {
    const int64_t x = a.get<int64_t>();
    if (places >= 0) return e.make(x);
    // 1250 | round: -2 is 1300: half away from zero at 10^-places.
    if (places < -18) return e.make(0);
    int64_t p = 1;
    for (int64_t i = 0; i < -places; ++i) p *= 10;
    const int64_t q = x / p, rem = x % p;
    int64_t r = q;
    if (rem >= p - rem && rem > 0) ++r;
    if (-rem >= p + rem && rem < 0) --r;
    int64_t out = 0;
    if (__builtin_mul_overflow(r, p, &out)) return e.make(static_cast<double>(r) * static_cast<double>(p));
    return e.make(out);
  }
  const double r = round_decimal(a.get<double>(), static_cast<int>(places));
  return places == 0 ? whole(e, r) : e.make(r);
}

bool f_ceil(FilterEnv& e) {
  const json a = to_number(e.in());
  if (!finite(e, a)) return false;
  if (a.is_number_integer()) return e.make(a);
  return whole(e, std::ceil(a.get<double>()));
}

bool f_floor(FilterEnv& e) {
  const json a = to_number(e.in());
  if (!finite(e, a)) return false;
  if (a.is_number_integer()) return e.make(a);
  return whole(e, std::floor(a.get<double>()));
}

bool f_abs(FilterEnv& e) {
  const json a = to_number(e.in());
  if (a.is_number_integer()) {
    const int64_t x = a.get<int64_t>();
    if (x == INT64_MIN) return e.make(-static_cast<double>(x));
    return e.make(x < 0 ? -x : x);
  }
  return e.make(std::fabs(a.get<double>()));
}

bool bound(FilterEnv& e, bool at_least) {
  const json a = to_number(e.in()), m = to_number(e.arg(0));
  int r = 0;
  order(m, a, &r);
  return e.make((at_least ? r > 0 : r < 0) ? m : a);
}

bool f_at_least(FilterEnv& e) {
  return bound(e, true);
}
bool f_at_most(FilterEnv& e) {
  return bound(e, false);
}

}  // namespace

void add_math_filters(std::vector<FilterDef>* t) {
  t->insert(t->end(), {
                          {"plus", 1, 1, f_plus},
                          {"minus", 1, 1, f_minus},
                          {"times", 1, 1, f_times},
                          {"divided_by", 1, 1, f_divided_by},
                          {"modulo", 1, 1, f_modulo},
                          {"round", 0, 1, f_round},
                          {"ceil", 0, 0, f_ceil},
                          {"floor", 0, 0, f_floor},
                          {"abs", 0, 0, f_abs},
                          {"at_least", 1, 1, f_at_least},
                          {"at_most", 1, 1, f_at_most},
                      });
}

}  // namespace opk::liquid::internal
