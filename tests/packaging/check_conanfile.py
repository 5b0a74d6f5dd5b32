"""Runs conanfile.py's methods against stand-ins for the `conan` module.

usage: check_conanfile.py SOURCE_DIR EXPECTED_VERSION

Conan cannot be installed on the build machines, so this checks what can be
checked without it: set_version() reads the version CMake uses, the options
and their defaults, the pinned requirements (websocketpp 0.8.2 needs
Asio < 1.33; private header-only requirements stay invisible), the CMake
cache variables generate() sets, and the components package_info() declares.
"""
import os
import re
import sys
import types


def fail(message):
    sys.exit(f"conanfile.py: {message}")


class Recorder:
    """Accepts any call or attribute, as the parts of Conan not checked here."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Recorder()

    def __getattr__(self, name):
        return Recorder()


class Options(dict):
    def __getattr__(self, name):
        return self[name]

    def rm_safe(self, name):
        self.pop(name, None)


class Settings(dict):
    def __getattr__(self, name):
        return self.get(name)

    def get_safe(self, name):
        return self.get(name)


class CppInfo:
    def __init__(self):
        self.properties = {}
        self.components = Components()
        self.libs, self.requires, self.defines, self.system_libs = [], [], [], []

    def set_property(self, name, value):
        self.properties[name] = value


class Components(dict):
    def __missing__(self, name):
        self[name] = CppInfo()
        return self[name]


toolchains = []


class CMakeToolchain:
    def __init__(self, conanfile):
        self.cache_variables = {}
        self.variables = {}
        toolchains.append(self)

    def generate(self):
        pass


def load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def install_stand_ins():
    class ConanFile:
        pass

    modules = {
        "conan": {"ConanFile": ConanFile},
        "conan.errors": {"ConanInvalidConfiguration": Exception, "ConanException": Exception},
        "conan.tools": {},
        "conan.tools.build": {"check_min_cppstd": Recorder(), "can_run": lambda conanfile: True},
        "conan.tools.cmake": {"CMake": Recorder, "CMakeDeps": Recorder, "CMakeToolchain": CMakeToolchain,
                              "cmake_layout": Recorder()},
        "conan.tools.files": {"copy": Recorder(), "load": load, "rmdir": Recorder(), "get": Recorder()},
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module
    return ConanFile


def load_recipe(path, base):
    namespace = {"__file__": path, "__name__": "conanfile"}
    with open(path, encoding="utf-8") as f:
        exec(compile(f.read(), path, "exec"), namespace)
    recipes = [v for v in namespace.values() if isinstance(v, type) and issubclass(v, base) and v is not base]
    if len(recipes) != 1:
        fail(f"expected one ConanFile class, found {len(recipes)}")
    return recipes[0]


def instantiate(recipe, source_dir, with_redis):
    conanfile = recipe()
    conanfile.recipe_folder = source_dir
    conanfile.options = Options({key: value for key, value in recipe.default_options.items() if "/" not in key})
    conanfile.options["with_redis"] = with_redis
    conanfile.settings = Settings(os="Linux", arch="x86_64", compiler="gcc", build_type="Release")
    conanfile.required = []
    conanfile.requires = lambda ref, **traits: conanfile.required.append((ref, traits))
    conanfile.cpp_info = CppInfo()
    return conanfile


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def main():
    source_dir, expected_version = sys.argv[1], sys.argv[2]
    recipe = load_recipe(os.path.join(source_dir, "conanfile.py"), install_stand_ins())

    if recipe.name != "livecast":
        fail(f"name is {recipe.name!r}")
    if recipe.license != "MIT":
        fail(f"license is {recipe.license!r}")
    if getattr(recipe, "version", None):
        fail("the version is set in config.hpp and read by set_version(), not written in the recipe")
    for setting in ("os", "arch", "compiler", "build_type"):
        if setting not in recipe.settings:
            fail(f"setting {setting} missing")
    for option, default in (("shared", False), ("fPIC", True), ("with_redis", True)):
        if option not in recipe.options or recipe.default_options.get(option) != default:
            fail(f"option {option} missing or its default is not {default}")
    for needed in ("CMakeLists.txt", "cmake/*", "include/*", "src/*", "LICENSE"):
        if needed not in recipe.exports_sources:
            fail(f"exports_sources lacks {needed}")

    for with_redis in (True, False):
        conanfile = instantiate(recipe, source_dir, with_redis)
        conanfile.set_version()
        if conanfile.version != expected_version:
            fail(f"set_version() gives {conanfile.version}, CMake's project version is {expected_version}")

        conanfile.requirements()
        required = {ref.split("/")[0]: (ref.split("/")[1], traits) for ref, traits in conanfile.required}
        if "asio" not in required or not required["asio"][1].get("transitive_headers"):
            fail("asio must be required with transitive_headers=True (the public headers include it)")
        if version_tuple(required["asio"][0]) >= (1, 33):
            fail(f"asio/{required['asio'][0]}: websocketpp 0.8.2 needs Asio older than 1.33")
        if required.get("websocketpp", ("",))[0] != "0.8.2":
            fail("websocketpp/0.8.2 is not required")
        for private in ("websocketpp", "rapidjson"):
            if private not in required or required[private][1].get("visible", True):
                fail(f"{private} must be required with visible=False (it stays inside the library)")
        if "openssl" not in required or required["openssl"][1].get("visible") is False:
            fail("openssl must be required, visibly (a static livecast links libcrypto into the consumer)")
        if ("hiredis" in required) != with_redis:
            fail(f"hiredis is required {'without' if with_redis else 'only with'} with_redis")

        toolchains.clear()
        conanfile.generate()
        cache = toolchains[0].cache_variables
        expected_cache = {"LIVECAST_BUILD_TESTS": False, "LIVECAST_BUILD_EXAMPLES": False,
                          "LIVECAST_BUILD_BENCHMARKS": False, "LIVECAST_WITH_REDIS": with_redis}
        for name, value in expected_cache.items():
            if name not in cache or bool(cache[name]) != value:
                fail(f"generate() must set {name}={'ON' if value else 'OFF'}")

        conanfile.package_info()
        info = conanfile.cpp_info
        if info.properties.get("cmake_file_name") != "livecast":
            fail("cmake_file_name must be livecast")
        core = info.components.get("livecast")
        if core is None or core.properties.get("cmake_target_name") != "livecast::livecast":
            fail("component livecast with cmake_target_name livecast::livecast missing")
        if core.libs != ["livecast"] or "asio::asio" not in core.requires or "ASIO_STANDALONE" not in core.defines:
            fail("component livecast: libs ['livecast'], requires asio::asio, defines ASIO_STANDALONE")
        if "openssl::crypto" not in core.requires:
            fail("component livecast: requires openssl::crypto (JWT signatures)")
        if "fmt" not in required or "fmt::fmt" not in core.requires:
            fail("fmt must be required, and component livecast must require fmt::fmt (the default log sink)")
        if "pthread" not in core.system_libs:
            fail("component livecast: system_libs pthread on Linux")
        redis = info.components.get("redis")
        if with_redis:
            if redis is None or redis.properties.get("cmake_target_name") != "livecast::redis":
                fail("component redis with cmake_target_name livecast::redis missing")
            if redis.libs != ["livecast_redis"] or set(redis.requires) != {"livecast", "hiredis::hiredis"}:
                fail("component redis: libs ['livecast_redis'], requires livecast and hiredis::hiredis")
        elif redis is not None:
            fail("component redis declared without with_redis")

    print(f"conanfile.py: livecast {expected_version}: recipe checks passed")


if __name__ == "__main__":
    main()
