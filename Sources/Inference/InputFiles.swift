import Foundation
import TesseraData
import TesseraEngine

#if canImport(Glibc)
    import Glibc
#endif

/// Expands command-line inputs (files and folders) into a sorted list of files, keeping each one's path
/// relative to the folder it was found in (so outputs can mirror the input tree).
public struct InputFiles {
    /// One file to process.
    public struct Entry: Equatable {
        public let url: URL
        /// Path below the folder given on the command line; the file name for files given directly.
        public let relativePath: String
    }

    public let entries: [Entry]

    /// - Parameters:
    ///   - extensions: lower-case extensions taken from folders (files named directly are always taken).
    ///   - recursive: descend into sub-folders.
    /// - Throws: an `FileError` for a path that does not exist.
    public init(_ paths: [String], extensions: Set<String>, recursive: Bool) throws {
        var found: [Entry] = []
        let fm = FileManager.default
        for path in paths.flatMap({ fm.fileExists(atPath: $0) ? [$0] : InputFiles.glob($0) ?? [$0] }) {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw FileError(file: path, reason: "no such file or folder")
            }
            let url = URL(fileURLWithPath: path)
            guard isDirectory.boolValue else {
                found.append(Entry(url: url, relativePath: url.lastPathComponent))
                continue
            }
            let base = url.standardizedFileURL.path
            var files: [URL] = []
            if recursive {
                guard let walker = fm.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey]) else {
                    throw FileError(file: path, reason: "cannot list folder")
                }
                for case let f as URL in walker { files.append(f) }
            } else {
                do {
                    files = try fm.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)
                } catch {
                    throw FileError(
                        file: path, reason: "cannot list folder: \((error as NSError).localizedDescription)")
                }
            }
            var inFolder: [Entry] = []
            for f in files
            where extensions.contains(f.pathExtension.lowercased()) && !f.lastPathComponent.hasPrefix(".") {
                let full = f.standardizedFileURL.path
                let relative = full.hasPrefix(base + "/") ? String(full.dropFirst(base.count + 1)) : f.lastPathComponent
                inFolder.append(Entry(url: f, relativePath: relative))
            }
            found += inFolder.sorted { $0.relativePath < $1.relativePath }
        }
        entries = found
    }

    /// Paths matching a shell pattern (`*`, `?`, `[...]`) that the shell did not expand (quoted, or from a
    /// script), sorted; nil when `pattern` has no wildcard or matches nothing.
    public static func glob(_ pattern: String) -> [String]? {
        guard pattern.contains(where: { "*?[".contains($0) }) else { return nil }
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return nil }
        let matches = (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
        return matches.isEmpty ? nil : matches.sorted()
    }
}
