# Conan 2 recipe for livecast. `conan create .` builds the library and runs
# test_package/; consumers `self.requires("livecast/<version>")` and use
# find_package(livecast CONFIG REQUIRED) with livecast::livecast (and
# livecast::redis when with_redis is on).
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

required_conan_version = ">=2.0.9"


class LivecastConan(ConanFile):
    name = "livecast"
    description = "Embeddable real-time broadcast library: live JSON to browser dashboards over WebSocket"
    license = "MIT"
    topics = ("websocket", "pubsub", "realtime", "dashboard", "asio")
    package_type = "library"

    settings = "os", "arch", "compiler", "build_type"
    options = {
        "shared": [True, False],
        "fPIC": [True, False],
        "with_redis": [True, False],
    }
    default_options = {
        "shared": False,
        "fPIC": True,
        "with_redis": True,
        # websocketpp on standalone Asio (not Boost), without TLS or deflate:
        # livecast serves plain WebSocket behind a TLS-terminating proxy.
        "websocketpp/*:asio": "standalone",
        "websocketpp/*:with_openssl": False,
        "websocketpp/*:with_zlib": False,
    }

    exports_sources = (
        "CMakeLists.txt",
        "LICENSE",
        "cmake/*",
        "include/*",
        "src/*",
    )

    def set_version(self):
        # The one place the version lives; CMake reads the same line.
        config = load(self, os.path.join(self.recipe_folder, "include", "livecast", "config.hpp"))
        found = re.search(r'^#define LIVECAST_VERSION_STRING "([0-9]+\.[0-9]+\.[0-9]+)"', config, re.MULTILINE)
        if not found:
            raise ConanInvalidConfiguration("no LIVECAST_VERSION_STRING in include/livecast/config.hpp")
        self.version = found.group(1)

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # Public: livecast's headers include Asio. livecast uses websocketpp's
        # protocol core only (its iostream transport, not its Asio one), so
        # websocketpp's trouble with Asio 1.33+ does not reach it; forcing one
        # known-good version keeps a single Asio in the graph whatever
        # websocketpp's recipe asks for.
        self.requires("asio/1.29.0", transitive_headers=True, force=True)
        # Private and header-only: used by src/ only, never by a consumer.
        self.requires("websocketpp/0.8.2", visible=False)
        self.requires("rapidjson/cci.20230929", visible=False)
        # Private, but a static livecast needs it at the consumer's link step:
        # libcrypto checks JWT signatures (HS256, RS256, ES256), libssl is TLS.
        self.requires("openssl/[>=3.0 <4]")
        # Private, compiled (the default log sink's formatting); a static
        # livecast needs it at the consumer's link step, like OpenSSL.
        self.requires("fmt/[>=9 <12]")
        if self.options.with_redis:
            self.requires("hiredis/1.2.0")

    def validate(self):
        if self.settings.compiler.get_safe("cppstd"):
            check_min_cppstd(self, 17)

    def generate(self):
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["LIVECAST_BUILD_TESTS"] = False
        toolchain.cache_variables["LIVECAST_BUILD_EXAMPLES"] = False
        toolchain.cache_variables["LIVECAST_BUILD_BENCHMARKS"] = False
        toolchain.cache_variables["LIVECAST_INSTALL"] = True
        toolchain.cache_variables["LIVECAST_WITH_REDIS"] = bool(self.options.with_redis)
        toolchain.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.install()
        # Conan writes its own CMake and pkg-config files from package_info().
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "livecast")
        # Not livecast::livecast: that name belongs to the core component, so
        # that linking it does not also link the Redis backend.
        self.cpp_info.set_property("cmake_target_name", "livecast::livecast_all")
        self.cpp_info.set_property("pkg_config_name", "livecast_all")

        core = self.cpp_info.components["livecast"]
        core.set_property("cmake_target_name", "livecast::livecast")
        core.set_property("pkg_config_name", "livecast")
        core.libs = ["livecast"]
        core.requires = ["asio::asio", "openssl::ssl", "openssl::crypto", "fmt::fmt"]
        core.defines = ["ASIO_STANDALONE"]
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]

        if self.options.with_redis:
            redis = self.cpp_info.components["redis"]
            redis.set_property("cmake_target_name", "livecast::redis")
            redis.set_property("pkg_config_name", "livecast-redis")
            redis.libs = ["livecast_redis"]
            redis.requires = ["livecast", "hiredis::hiredis"]
