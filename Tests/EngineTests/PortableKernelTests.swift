import Foundation
import TestSupport
import XCTest

/// The C kernels build for aarch64 with no x86 intrinsics reached, and there the portable kernels become NEON
/// vector code (the compiler's auto-vectorisation): compiled here with the toolchain's clang against Debian's
/// aarch64 C headers (`libc6-dev-arm64-cross`, which `make test` installs).
final class PortableKernelTests: XCTestCase {
    func testKernelsCompileToNEONForAArch64() throws {
        let headers = "/usr/aarch64-linux-gnu/include"
        guard let clang = Self.clang(), FileManager.default.fileExists(atPath: headers) else {
            let message = "aarch64 cross-compile check needs clang and \(headers) (make test installs them)"
            if ProcessInfo.processInfo.environment["REQUIRE_SHARED"] == "1" { XCTFail(message) }
            throw XCTSkip(message)
        }
        let folder = SharedFixtures.packageRoot.appendingPathComponent("Sources/CKernels")
        let sources = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".c") }
            .sorted()
        XCTAssertTrue(sources.contains("gemm_kernels.c"))
        for name in sources {
            let (status, output) = try Self.run(
                clang,
                [
                    "--target=aarch64-linux-gnu", "-isystem", headers,
                    "-I", folder.appendingPathComponent("include").path,
                    "-O2", "-Werror", "-S", "-o", "-",
                    folder.appendingPathComponent(name).path
                ])
            XCTAssertEqual(status, 0, "\(name) does not build for aarch64:\n\(output.suffix(2000))")
            if name == "gemm_kernels.c" {
                // Vector fused multiply-adds on 4-float NEON registers: the portable GEMM and row-reduction kernels.
                let neon = output.components(separatedBy: "\n").filter { $0.contains("fmla\tv") && $0.contains(".4s") }
                XCTAssertGreaterThan(neon.count, 8, "the portable kernels did not vectorise to NEON")
            }
        }
    }

    /// clang beside `swift` on PATH (the Swift toolchain ships one), or any clang on PATH.
    static func clang() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/clang"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("aarch64-\(UUID().uuidString).s")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return (process.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "")
    }
}
